"""The two trainers on the annotated real-media dataset with tiny random models (CPU)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.training.conftest import losses
from training import distill, train_expression, train_reference

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--num-workers", "0", "--no-tensorboard", "--log-every", "0", "--sample-steps", "2"]


def _expression(data, models, out, *extra) -> int:
    return train_expression.main(["--data", str(data), "--models", str(models), "--out", str(out), *FAST, *map(str, extra)])


def _reference(data, models, out, *extra) -> int:
    return train_reference.main(["--data", str(data), "--models", str(models), "--out", str(out), "--rank", "4", *FAST, *map(str, extra)])


@pytest.fixture(scope="module")
def expression_run(dataset_dir, blendshape_models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "run"
    torch.set_num_threads(1)
    assert _expression(dataset_dir, blendshape_models_dir, out, "--max-steps", 30, "--batch-size", 2, "--lr", 1e-3,
                       "--save-every", 15, "--sample-every", 30, "--sample-count", 2) == 0
    return out


@pytest.fixture(scope="module")
def reference_run(dataset_dir, blendshape_models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    torch.set_num_threads(1)
    assert _reference(dataset_dir, blendshape_models_dir, out, "--max-steps", 30, "--batch-size", 2, "--lr", 1e-3,
                      "--save-every", 15, "--sample-every", 30, "--gradient-checkpointing") == 0
    return out


def test_expression_trainer_writes_published_layout(expression_run, blendshape_models_dir):
    for path in (expression_run / "exp_adapter.bin", expression_run / "checkpoint-15" / "exp_adapter.bin",
                 expression_run / "checkpoint-30" / "exp_adapter.bin"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert set(state) == {"image_proj", "ip_adapter"}
        assert state["image_proj"]["proj.0.weight"].shape[1] == 52
        assert all(k.endswith(("to_k_ip.weight", "to_v_ip.weight")) for k in state["ip_adapter"])
    assert (expression_run / "samples" / "step-0000030.png").is_file()
    assert len(losses(expression_run)) == 30 and all(np.isfinite(losses(expression_run)))
    assert list((expression_run / "logs").rglob("events.out.tfevents.*")) == []  # --no-tensorboard


def test_reference_trainer_writes_published_layout(reference_run, blendshape_models_dir):
    from diffusers import UNet2DConditionModel

    from retarget.models.adapters import reference_lora_keys

    unet = UNet2DConditionModel.from_pretrained(blendshape_models_dir / "arc2face")
    path = reference_run / "pytorch_lora_weights.safetensors"
    state = load_file(path)
    assert set(state) == reference_lora_keys(unet)
    assert {v.shape[0] for k, v in state.items() if k.endswith("down.weight")} == {4}
    assert any(v.abs().max() > 0 for k, v in state.items() if k.endswith("up.weight"))  # trained away from zero
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata() == {"format": "pt"}
    assert (reference_run / "checkpoint-15" / "pytorch_lora_weights.safetensors").is_file()
    assert (reference_run / "samples" / "step-0000030.png").is_file()


def test_trained_files_load_in_the_generator(expression_run, reference_run, blendshape_models_dir, shared_dir, landmarker_path, tmp_path):
    from PIL import Image

    from retarget.cli import main as cli

    media = shared_dir / "media"

    def render(name, *extra):
        out = tmp_path / f"{name}.png"
        rc = cli(["--headless", "--models", str(blendshape_models_dir), "--identity", str(media / "identity_freeman.jpg"),
                  "--driver", str(media / "expression_exp1_rgba.png"), "--out", str(out), "--landmarker", str(landmarker_path),
                  "--steps", "2", "--device", "cpu", *map(str, extra)])
        assert rc == 0
        return np.asarray(Image.open(out), dtype=np.int16)

    untrained = render("untrained")
    exp = render("exp", "--exp-adapter", expression_run / "checkpoint-30" / "exp_adapter.bin")
    ref = render("ref", "--ref-lora", reference_run / "pytorch_lora_weights.safetensors")
    both = render("both", "--exp-adapter", expression_run / "exp_adapter.bin",
                  "--ref-lora", reference_run / "checkpoint-15" / "pytorch_lora_weights.safetensors")
    for image in (exp, ref, both):
        assert np.abs(image - untrained).mean() > 0.5


def test_expression_overfits_two_samples(dataset_dir, blendshape_models_dir, tmp_path):
    out = tmp_path / "overfit"
    assert _expression(dataset_dir, blendshape_models_dir, out, "--max-steps", 80, "--batch-size", 2, "--subset", 2,
                       "--fixed-timestep", 500, "--fixed-noise", "--drop-id", 0, "--drop-expression", 0, "--lr", 3e-3,
                       "--max-grad-norm", 0, "--save-every", 0) == 0
    values = losses(out)
    assert np.mean(values[-5:]) < 0.5 * np.mean(values[:5]), values


def test_reference_overfits_two_samples(dataset_dir, blendshape_models_dir, tmp_path):
    out = tmp_path / "overfit"
    assert _reference(dataset_dir, blendshape_models_dir, out, "--max-steps", 60, "--batch-size", 2, "--subset", 2, "--rank", 8,
                      "--fixed-timestep", 500, "--fixed-noise", "--lr", 3e-2, "--max-grad-norm", 0, "--save-every", 0) == 0
    values = losses(out)
    assert np.mean(values[-5:]) < 0.5 * np.mean(values[:5]), values


def _straight_and_resumed(train, dataset_dir, models_dir, tmp_path, steps, *common):
    """Train `steps` straight, and `steps // 2` then resumed to `steps`; returns both output folders."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert train(dataset_dir, models_dir, straight, "--max-steps", steps, *common) == 0
    assert train(dataset_dir, models_dir, stopped, "--max-steps", steps // 2, *common) == 0
    assert train(dataset_dir, models_dir, stopped, "--max-steps", steps, "--resume", *common) == 0
    return straight, stopped


def test_resume_matches_a_straight_run(dataset_dir, blendshape_models_dir, tmp_path):
    straight, stopped = _straight_and_resumed(_expression, dataset_dir, blendshape_models_dir, tmp_path, 20,
                                              "--batch-size", 2, "--lr", 1e-3, "--save-every", 10)
    a = torch.load(straight / "exp_adapter.bin", weights_only=True)
    b = torch.load(stopped / "exp_adapter.bin", weights_only=True)
    ten = torch.load(stopped / "checkpoint-10" / "exp_adapter.bin", weights_only=True)
    for group in a:
        for key in a[group]:
            torch.testing.assert_close(a[group][key], b[group][key], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a[g][k], ten[g][k]) for g in a for k in a[g])  # the resumed half did train
    assert losses(straight) == pytest.approx(losses(stopped), rel=1e-5, abs=1e-6)


def test_reference_resume_matches_a_straight_run(dataset_dir, blendshape_models_dir, tmp_path):
    straight, stopped = _straight_and_resumed(_reference, dataset_dir, blendshape_models_dir, tmp_path, 6,
                                              "--batch-size", 1, "--lr", 1e-3, "--save-every", 3)
    a, b = load_file(straight / "pytorch_lora_weights.safetensors"), load_file(stopped / "pytorch_lora_weights.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("trainer", ["train_expression", "train_reference", "distill"])
def test_accelerate_launch_two_processes(trainer, dataset_dir, blendshape_models_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "mp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
           "-m", f"training.{trainer}", "--data", str(dataset_dir), "--models", str(blendshape_models_dir), "--out", str(out),
           "--max-steps", "2", "--batch-size", "1", "--save-every", "2", *FAST]
    if trainer != "train_expression":
        cmd += ["--rank", "4"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stderr
    assert (out / "checkpoint-2" / "random_states_1.pkl").is_file()
    name = "exp_adapter.bin" if trainer == "train_expression" else "pytorch_lora_weights.safetensors"
    assert (out / name).is_file()


@pytest.mark.parametrize("main", [train_expression.main, train_reference.main, distill.main])
def test_bad_inputs_give_one_line(main, tmp_path, capsys, dataset_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.jsonl").write_text("")
    cases = [
        ["--data", str(tmp_path / "nope"), "--models", "random:tiny", "--out", str(tmp_path / "o")],
        ["--data", str(empty), "--models", "random:tiny", "--out", str(tmp_path / "o")],
        ["--data", str(dataset_dir), "--models", str(tmp_path / "no-models"), "--out", str(tmp_path / "o")],
        ["--data", str(dataset_dir), "--models", "random:huge", "--out", str(tmp_path / "o")],
        ["--data", str(dataset_dir), "--models", "random:tiny", "--out", str(tmp_path / "o"), "--max-steps", "0"],
    ]
    for argv in cases:
        rc = main(argv)
        err = capsys.readouterr().err.strip()
        assert rc != 0, argv
        assert "Traceback" not in err and len(err.splitlines()) == 1 and "error" in err, (argv, err)
