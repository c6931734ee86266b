"""Latent consistency distillation (training.distill) and its evaluation (training.eval_distill), tiny models on CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import losses
from tests.training.test_trainers import FAST, _straight_and_resumed
from training import distill, eval_distill

LORA = "pytorch_lora_weights.safetensors"


def _distill(data, models, out, *extra) -> int:
    return distill.main(["--data", str(data), "--models", str(models), "--out", str(out), "--rank", "4", *FAST, *map(str, extra)])


@pytest.fixture(scope="module")
def distill_run(dataset_dir, blendshape_models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lcm") / "run"
    torch.set_num_threads(1)
    assert _distill(dataset_dir, blendshape_models_dir, out, "--max-steps", 16, "--batch-size", 2, "--lr", 1e-2, "--ema-decay", 0.5,
                    "--save-every", 8, "--sample-every", 16, "--sample-count", 1, "--gradient-checkpointing") == 0
    return out


def test_distilled_lora_is_in_diffusers_format_and_loads_beside_the_reference_adapter(distill_run, blendshape_models_dir):
    from retarget.weights.assets import resolve_models
    from retarget.pipeline import RetargetPipeline

    state = load_file(distill_run / LORA)
    assert all(k.startswith("unet.") and (k.endswith(".lora_A.weight") or k.endswith(".lora_B.weight")) for k in state)
    assert any(".resnets." in k and ".conv1." in k for k in state) and any(".attn2.to_k." in k for k in state)  # LCM-LoRA's coverage
    assert any(v.abs().max() > 0 for k, v in state.items() if "lora_B" in k)  # trained away from the zero start
    assert (distill_run / "checkpoint-8" / LORA).is_file() and (distill_run / "checkpoint-8" / "trainer_state.safetensors").is_file()
    assert (distill_run / "samples" / "step-0000016.png").is_file()
    assert len(losses(distill_run)) == 16 and all(np.isfinite(losses(distill_run)))
    pipe = RetargetPipeline.from_files(resolve_models(str(blendshape_models_dir)))
    pipe.load_lcm_lora(distill_run / LORA)
    assert set(pipe.unet.peft_config) == {"reference", "lcm"}


def test_student_gets_closer_to_the_teacher(distill_run, blendshape_models_dir, shared_dir, landmarker_path, tmp_path, capsys):
    """The objective pulls the 4-step student towards the 25-step guided teacher (PSNR up) compared with the untrained student."""
    media = shared_dir / "media"
    report = tmp_path / "eval.json"
    rc = eval_distill.main(["--models", str(blendshape_models_dir), "--identity", str(media / "identity_freeman.jpg"),
                            "--driver", str(media / "expression_exp1_rgba.png"), "--lcm-lora", "untrained",
                            "--lcm-lora", str(distill_run / LORA), "--student-steps", "4", "--landmarker", str(landmarker_path),
                            "--device", "cpu", "--json", str(report)])
    assert rc == 0
    rows = json.loads(report.read_text())["rows"]
    assert [(r["model"], r["sampler"], r["steps"]) for r in rows] == [
        ("teacher", "dpmsolver++", 25), ("untrained", "lcm", 4), (str(distill_run / LORA), "lcm", 4)]
    untrained, trained = rows[1]["psnr"], rows[2]["psnr"]
    assert trained > untrained, (untrained, trained)
    assert all(r["seconds_per_frame"] > 0 for r in rows)
    table = capsys.readouterr().out
    assert "PSNR" in table and "untrained" in table


def test_distilled_lora_drives_the_lcm_preset(distill_run, blendshape_models_dir, shared_dir, landmarker_path, tmp_path):
    from PIL import Image

    from retarget.cli import main as cli

    media = shared_dir / "media"
    untrained = eval_distill.untrained_lora(blendshape_models_dir / "arc2face", tmp_path)

    def render(name, lora):
        out = tmp_path / f"{name}.png"
        rc = cli(["--headless", "--models", str(blendshape_models_dir), "--identity", str(media / "identity_freeman.jpg"),
                  "--driver", str(media / "expression_exp1_rgba.png"), "--out", str(out), "--landmarker", str(landmarker_path),
                  "--preset", "lcm", "--lcm-lora", str(lora), "--device", "cpu"])
        assert rc == 0
        return np.asarray(Image.open(out), dtype=np.int16)

    assert np.abs(render("trained", distill_run / LORA) - render("untrained", untrained)).mean() > 0.5


def test_distill_resume_matches_a_straight_run(dataset_dir, blendshape_models_dir, tmp_path):
    straight, stopped = _straight_and_resumed(_distill, dataset_dir, blendshape_models_dir, tmp_path, 4,
                                              "--batch-size", 1, "--lr", 1e-2, "--ema-decay", 0.5, "--save-every", 2)
    a, b = load_file(straight / LORA), load_file(stopped / LORA)
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    # the EMA target was restored too: the losses after the resume match as well
    assert losses(straight) == pytest.approx(losses(stopped), rel=1e-5, abs=1e-6)


def test_distill_bad_options_give_one_line(dataset_dir, tmp_path, capsys):
    cases = [
        ["--ema-decay", "1.5"],
        ["--teacher-cfg", "0.5"],
        ["--ref-lora", str(tmp_path / "missing.safetensors")],
        ["--init", str(tmp_path / "missing.safetensors")],
    ]
    for extra in cases:
        rc = distill.main(["--data", str(dataset_dir), "--models", "random:tiny", "--out", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len([line for line in err if "error" in line]) == 1 and "Traceback" not in "\n".join(err), (extra, err)
    assert not (tmp_path / "o" / LORA).exists()


def test_eval_distill_bad_inputs_give_one_line(tmp_path, capsys):
    for extra in (["--identity", str(tmp_path / "none.png"), "--driver", str(tmp_path / "none.png")],
                  ["--identity", str(tmp_path), "--driver", str(tmp_path), "--student-steps", "four"]):
        rc = eval_distill.main([*extra, "--lcm-lora", "untrained", "--models", "random:tiny"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255
    assert eval_distill.psnr(a, a) == 100.0
    assert eval_distill.psnr(a, b) == pytest.approx(10 * np.log10(48))


def test_teacher_step_is_ddim_and_the_student_is_parametrised_as_lcm_scheduler_samples():
    """The objective's pieces against diffusers' own schedulers on the SD 1.5 schedule."""
    import argparse

    from diffusers import DDIMScheduler, LCMScheduler

    from retarget.weights.testmodels import SD15_SCHEDULER_CONFIG

    trainer = distill.DistillTrainer(argparse.Namespace(use_reference=True))
    trainer.set_schedule(SD15_SCHEDULER_CONFIG)
    assert trainer.skip == 20 and trainer.grid[0] == 19 and trainer.grid[-1] == 999
    gen = torch.Generator().manual_seed(0)
    sample, eps = torch.randn((1, 4, 8, 8), generator=gen), torch.randn((1, 4, 8, 8), generator=gen)
    ddim = DDIMScheduler.from_config(SD15_SCHEDULER_CONFIG, set_alpha_to_one=False)
    ddim.set_timesteps(50)
    for start in (999, 519, 19):  # 19 -> 0: the last grid step
        expected = ddim.step(eps, start, sample, eta=0.0).prev_sample
        ours = trainer.ddim_step(eps, torch.tensor([start]), (torch.tensor([start]) - trainer.skip).clamp(min=0), sample)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    lcm = LCMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    lcm.set_timesteps(4)
    t = int(lcm.timesteps[0])
    denoised = lcm.step(eps, t, sample).denoised
    torch.testing.assert_close(trainer.consistency(eps, torch.tensor([t]), sample), denoised, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(trainer.consistency(eps, torch.tensor([0]), sample), sample)  # boundary: f(x, 0) = x
