"""The `retarget` command: headless rendering, model resolution and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retarget.cli import main
from tests.conftest import needs_shared


def run_cli(args: list[str], tmp_path: Path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf"), **env}
    environment.pop("RETARGET_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "retarget", *args], capture_output=True, text=True, env=environment, timeout=600)


def error_lines(stderr: str) -> list[str]:
    """stderr minus informational notes (e.g. that a test model is in use) and the loading stages' progress lines."""
    from retarget.cli.stages import is_stage_line

    return [line for line in stderr.splitlines() if not line.startswith("note:") and not is_stage_line(line) and line.strip()]


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("retarget: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@needs_shared
def test_headless_random_tiny_writes_an_image_of_the_configured_size(tmp_path, shared_dir, landmarker_path):
    out = tmp_path / "x.png"
    result = run_cli(
        [
            "--headless", "--models", "random:tiny",
            "--identity", str(shared_dir / "media" / "identity_freeman.jpg"),
            "--driver", str(shared_dir / "media" / "expression_exp1_rgba.png"),
            "--out", str(out), "--steps", "3", "--landmarker", str(landmarker_path),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "RANDOM TEST MODEL" in result.stderr + result.stdout
    image = np.asarray(Image.open(out))
    assert image.shape == (1498, 1000, 3)  # --frame full (default): the generated face pasted back into the photo
    assert "x the generated 64 px face, so the pasted face is upsampled" in result.stderr  # the tiny models: 64 px
    assert not list(tmp_path.glob(".*partial*"))


def test_hub_without_network_is_one_clear_line(tmp_path):
    result = run_cli(
        ["--headless", "--identity", "a.jpg", "--driver", "b.png", "--out", str(tmp_path / "o.png")],
        tmp_path,
    )
    # inputs are checked first: a missing identity photo is named
    assert_one_line_error(result, "a.jpg")
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    result = run_cli(
        ["--headless", "--identity", str(photo), "--driver", str(photo), "--out", str(tmp_path / "o.png")],
        tmp_path,
        HF_HUB_OFFLINE="1",
    )
    assert_one_line_error(result, "FoivosPar/Arc2Face", "retarget download")
    assert not (tmp_path / "o.png").exists()


def test_missing_files_in_a_models_folder_are_named(tmp_path, capsys):
    folder = tmp_path / "models"
    (folder / "arc2face").mkdir(parents=True)
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    code = main(["--headless", "--models", str(folder), "--identity", str(photo), "--driver", str(photo), "--out", str(tmp_path / "o.png")])
    err = error_lines(capsys.readouterr().err)
    assert code != 0 and len(err) == 1
    assert "arcface.onnx" in err[0] and "retarget download" in err[0]


def test_testmodels_writes_the_published_layout(tmp_path, capsys):
    out = tmp_path / "tm"
    assert main(["testmodels", "--size", "tiny", "--out", str(out), "--exp-dim", "52"]) == 0
    assert "RANDOM" in capsys.readouterr().out
    for rel in (
        "arc2face/config.json", "arc2face/diffusion_pytorch_model.safetensors", "encoder/config.json",
        "encoder/pytorch_model.bin", "arcface.onnx", "exp_adapter/exp_adapter.bin",
        "ref_adapter/pytorch_lora_weights.safetensors", "sd15/vae/config.json", "sd15/tokenizer/vocab.json",
        "sd15/scheduler/scheduler_config.json", "smirk/SMIRK_em1.pt", "RANDOM_TEST_MODEL.txt",
    ):
        assert (out / rel).is_file(), rel
    import torch

    encoder_keys = torch.load(out / "encoder" / "pytorch_model.bin", weights_only=True)
    assert all(k.startswith("text_model.") for k in encoder_keys)
    assert torch.load(out / "exp_adapter" / "exp_adapter.bin", weights_only=True)["image_proj"]["proj.0.weight"].shape[1] == 52
    # writing over an existing set is refused, not merged
    assert main(["testmodels", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_bad_adapter_file_is_one_line(tmp_path, tiny_models_dir, capsys):
    bad = tmp_path / "exp.bin"
    bad.write_bytes(b"not a checkpoint")
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    code = main(["--headless", "--models", str(tiny_models_dir), "--exp-adapter", str(bad),
                 "--identity", str(photo), "--driver", str(photo), "--out", str(tmp_path / "o.png")])
    err = error_lines(capsys.readouterr().err)
    assert code == 2 and len(err) == 1 and "exp.bin" in err[0]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--steps", "0"], "--steps"),
        (["--cfg", "0.5"], "--cfg"),
        (["--device", "cuda:7"], "cuda"),
    ],
)
def test_bad_settings_are_one_line(tmp_path, tiny_models_dir, capsys, args, fragment):
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    code = main(["--headless", "--models", str(tiny_models_dir), "--identity", str(photo), "--driver", str(photo),
                 "--out", str(tmp_path / "o.png"), *args])
    err = error_lines(capsys.readouterr().err)
    assert code == 2 and len(err) == 1 and fragment in err[0]


@needs_shared
def test_identity_without_a_face_is_one_line(tmp_path, tiny_models_dir, shared_dir, landmarker_path, capsys):
    media = shared_dir / "media"
    code = main(["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "2",
                 "--identity", str(media / "noface_alpaca_s23.jpg"), "--driver", str(media / "expression_exp1_rgba.png"),
                 "--out", str(tmp_path / "o.png")])
    err = error_lines(capsys.readouterr().err)
    assert code == 2 and len(err) == 1 and "no face" in err[0] and "noface_alpaca_s23.jpg" in err[0]
    assert not (tmp_path / "o.png").exists()


@needs_shared
def test_blendshape_adapter_from_exp_adapter_flag(tmp_path, tiny_models_dir, shared_dir, landmarker_path, capsys):
    """A 52-wide adapter given with --exp-adapter is driven by MediaPipe blendshapes (no SMIRK) and changes the output."""
    other = tmp_path / "bs"
    assert main(["testmodels", "--out", str(other), "--exp-dim", "52", "--seed", "5"]) == 0
    media = shared_dir / "media"
    common = ["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "2",
              "--identity", str(media / "identity_hepburn_small.png"), "--driver", str(media / "expression_exp3_rgba.png"),
              "--frame", "crop"]  # the generated square itself (the default pastes it back into the photo)
    assert main([*common, "--out", str(tmp_path / "default.png")]) == 0
    assert main([*common, "--exp-adapter", str(other / "exp_adapter" / "exp_adapter.bin"), "--out", str(tmp_path / "bs.png")]) == 0
    a = np.asarray(Image.open(tmp_path / "default.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "bs.png")).astype(int)
    assert a.shape == b.shape == (64, 64, 3) and np.abs(a - b).mean() > 0.5
