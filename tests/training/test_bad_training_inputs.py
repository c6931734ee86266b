"""Damaged datasets and checkpoints are refused with one line (never loaded unsafely, never skipped quietly),
and a training --out never takes over a folder of the user's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.test_bad_inputs import evil_pickle, snapshot
from tests.training.test_trainers import _expression

STEP_ARGS = ("--max-steps", 2, "--batch-size", 1, "--save-every", 1)


@pytest.fixture(scope="module")
def checkpointed_run(dataset_dir, blendshape_models_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad") / "run"
    torch.set_num_threads(1)
    assert _expression(dataset_dir, blendshape_models_dir, out, "--max-steps", 1, "--batch-size", 1, "--save-every", 1) == 0
    return out


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert "Traceback" not in err and "unexpected error" not in err and len(lines) == 1, err
    assert "weights_only=False" not in err and "likely succeed" not in err
    return lines[0]


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


def _damage_random_state(ckpt: Path, ws: Path) -> None:
    (ckpt / "random_states_0.pkl").write_bytes(b"\x80\x04garbage")


def _damage_optimizer_pickle(ckpt: Path, ws: Path) -> None:
    evil_pickle(ckpt / "optimizer.bin", ws / "PWNED")


def _damage_scheduler_non_tensor(ckpt: Path, ws: Path) -> None:
    evil_pickle(ckpt / "scheduler.bin", ws / "PWNED", {"last_epoch": 1})


def _truncate_weights(ckpt: Path, ws: Path) -> None:
    data = (ckpt / "trainable.safetensors").read_bytes()
    (ckpt / "trainable.safetensors").write_bytes(data[: len(data) // 3])


def _corrupt_state_json(ckpt: Path, ws: Path) -> None:
    (ckpt / "training_state.json").write_text("{\"step\": ")


@pytest.mark.parametrize("damage, fragments", [
    (_damage_random_state, ["random_states_0.pkl"]),
    (_damage_optimizer_pickle, ["optimizer.bin", "not a safe checkpoint"]),
    (_damage_scheduler_non_tensor, ["scheduler.bin", "not a safe checkpoint"]),
    (_truncate_weights, ["trainable.safetensors", "truncated or corrupt"]),
    (_corrupt_state_json, ["training_state.json", "damaged"]),
], ids=["random-state", "optimizer-pickle", "scheduler-non-tensor", "truncated-checkpoint", "state-json"])
def test_a_damaged_checkpoint_is_refused_on_resume(damage, fragments, checkpointed_run, dataset_dir, blendshape_models_dir,
                                                   tmp_path, capsys):
    out = _copy(checkpointed_run, tmp_path)
    damage(out / "checkpoint-1", tmp_path)
    before = snapshot(out)
    assert _expression(dataset_dir, blendshape_models_dir, out, *STEP_ARGS, "--resume") == 2
    line = _one_line(capsys)
    for fragment in fragments:
        assert fragment in line, line
    assert not (tmp_path / "PWNED").exists()
    assert snapshot(out) == before  # nothing trained on, nothing rewritten


def _dataset_copy(dataset_dir: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(dataset_dir, data)
    return data


def test_a_corrupt_manifest_is_refused(dataset_dir, blendshape_models_dir, tmp_path, capsys):
    data = _dataset_copy(dataset_dir, tmp_path)
    lines = (data / "manifest.jsonl").read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # not the last line: not a crash's cut-short append
    (data / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    assert _expression(data, blendshape_models_dir, tmp_path / "o", *STEP_ARGS) == 2
    assert "line 2" in _one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_a_manifest_row_outside_its_shard_is_refused(dataset_dir, blendshape_models_dir, tmp_path, capsys):
    data = _dataset_copy(dataset_dir, tmp_path)
    records = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    sample = next(r for r in records if r["type"] == "sample")
    sample["row"] = 10_000
    (data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert _expression(data, blendshape_models_dir, tmp_path / "o", *STEP_ARGS) == 2
    line = _one_line(capsys)
    assert "row 10000" in line and sample["shard"] in line
    assert not (tmp_path / "o").exists()


def test_training_never_writes_into_a_foreign_folder(dataset_dir, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "losses.jsonl").write_text("my own notes\n")
    assert _expression(dataset_dir, "random:tiny", mine, *STEP_ARGS) == 2
    assert "other files" in _one_line(capsys)
    assert [p.name for p in mine.iterdir()] == ["losses.jsonl"] and (mine / "losses.jsonl").read_text() == "my own notes\n"
    inside = dataset_dir / "run"
    assert _expression(dataset_dir, "random:tiny", inside, *STEP_ARGS) == 2
    assert "inside --data" in _one_line(capsys) and not inside.exists()


def test_annotate_never_writes_into_a_foreign_folder(shared_dir, tmp_path, capsys):
    from training.annotate import main

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    assert main([str(shared_dir / "media" / "identity_freeman.jpg"), "--out", str(mine), "--models", "random:tiny"]) == 2
    assert "other files" in _one_line(capsys)
    assert os.listdir(mine) == ["keep.txt"]


# issue #25: a bad dataset is refused in one line before the run folder exists; the dataset stays byte-identical
def _rewrite_first_sample(data: Path, change) -> dict:
    records = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    sample = next(r for r in records if r["type"] == "sample")
    change(data, sample)
    (data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return sample


def _missing_crop(data, sample):
    (data / sample["crop"]).unlink()


def _crop_escaping(data, sample):
    sample["crop"] = "../../../../etc/hostname"


def _frame_not_a_number(data, sample):
    sample["frame"] = "twelve"


def _clip_a_list(data, sample):
    sample["clip"] = [sample["clip"]]


def _shard_of_wrong_width(data, sample):
    import numpy as np

    path = data / sample["shard"]
    with np.load(path) as shard:
        arrays = {k: shard[k] for k in shard.files}
    arrays["blendshapes"] = arrays["blendshapes"][:, :40]
    np.savez(path, **arrays)


def _nan_in_shard(data, sample):
    import numpy as np

    path = data / sample["shard"]
    with np.load(path) as shard:
        arrays = {k: shard[k] for k in shard.files}
    arrays["arcface"][0, 0] = np.nan
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage, fragments", [
    (_missing_crop, ["crop", "missing"]),
    (_crop_escaping, ["../../../../etc/hostname", "outside the dataset"]),
    (_frame_not_a_number, ["frame", "'twelve'"]),
    (_clip_a_list, ["clip", "not text"]),
    (_shard_of_wrong_width, ["blendshapes", "(N, 52)"]),
    (_nan_in_shard, ["NaN/inf", "arcface"]),
], ids=["missing-crop", "crop-escaping-the-dataset", "frame-not-a-number", "clip-a-list", "shard-wrong-width", "nan-in-shard"])
@pytest.mark.parametrize("trainer", ["expression", "reference"])
def test_a_bad_dataset_is_refused_before_the_run_folder_exists(damage, fragments, trainer, dataset_dir, blendshape_models_dir,
                                                               tmp_path, capsys):
    from tests.training.test_trainers import _reference

    data = _dataset_copy(dataset_dir, tmp_path)
    sample = _rewrite_first_sample(data, damage)
    before = snapshot(data)
    train = _expression if trainer == "expression" else _reference
    assert train(data, blendshape_models_dir, tmp_path / "o", *STEP_ARGS) == 2
    line = _one_line(capsys)
    for fragment in fragments:
        assert fragment in line, line
    assert any(where in line for where in (str(sample["id"]), sample["shard"], "line 1:")), line  # names what to fix
    assert not (tmp_path / "o").exists()
    assert snapshot(data) == before


def test_a_nan_stop_leaves_no_checkpoint_of_nan_weights(checkpointed_run, dataset_dir, blendshape_models_dir, tmp_path,
                                                         capsys):
    """Weights gone inf (here: a checkpoint damaged so): the run stops in one line at the first NaN loss; no
    checkpoint of the bad weights and no export are written, and the checkpoints before stay byte-identical."""
    from safetensors.torch import load_file, save_file

    out = _copy(checkpointed_run, tmp_path)
    weights = out / "checkpoint-1" / "trainable.safetensors"
    state = load_file(weights)
    save_file({k: torch.full_like(v, float("inf")) for k, v in state.items()}, weights)
    (out / "exp_adapter.bin").unlink(missing_ok=True)
    before = snapshot(out)
    assert _expression(dataset_dir, blendshape_models_dir, out, "--max-steps", 3, "--batch-size", 1, "--save-every", 1,
                       "--resume") == 2
    line = _one_line(capsys)
    assert "nan" in line.lower() and "--lr" in line, line
    after = snapshot(out)
    assert not any(name.startswith("checkpoint-2") or name.startswith("checkpoint-3") for name in after)
    assert not (out / "exp_adapter.bin").exists()
    assert {k: v for k, v in after.items() if k.startswith("checkpoint-1")} == \
        {k: v for k, v in before.items() if k.startswith("checkpoint-1")}


@pytest.mark.parametrize("flag", ["--lr", "--weight-decay"])
def test_a_huge_rate_is_refused_before_the_run_folder_exists(flag, dataset_dir, blendshape_models_dir, tmp_path, capsys):
    assert _expression(dataset_dir, blendshape_models_dir, tmp_path / "run", *STEP_ARGS, flag, "1e39") == 2
    assert flag in _one_line(capsys)
    assert not (tmp_path / "run").exists()
