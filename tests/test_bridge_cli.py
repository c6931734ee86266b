"""`retarget bridge fit|eval|show` on the command line: refusals in one line (exit 2, nothing written), eval counting
the renders where MediaPipe finds no face (tiny models render noise), show naming the bridge found."""

from __future__ import annotations

import json

import numpy as np

from retarget.cli import main
from retarget.expression.bridge import ExpressionBridge, adapter_sha256, cache_bridge_path
from tests.conftest import cut_clip


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("retarget: ") and "\n" not in err and "Traceback" not in err
    return err


def _bridge_for(models_dir, path):
    sha = adapter_sha256(models_dir / "exp_adapter" / "exp_adapter.bin")
    rng = np.random.default_rng(0)
    return ExpressionBridge(rng.normal(size=(52, 55)) * 0.1, np.zeros(55), sha,
                            {"source": "test", "samples": 50, "held_out": 10, "r2": {"all": 0.5}, "mae": {"all": 0.1}}).save(path)


def test_a_blendshape_adapter_needs_no_bridge(blendshape_models_dir, landmarker_path, tmp_path, capsys, shared_dir):
    out = tmp_path / "b.safetensors"
    for source in (["--videos", str(shared_dir / "media" / "driver_d0.mp4")], ["--renders", "8"]):
        code = main(["bridge", "fit", "--models", str(blendshape_models_dir), *source, "--landmarker", str(landmarker_path),
                     "--out", str(out)])
        assert code == 2 and "need no bridge" in _one_line_error(capsys)
    assert not out.exists() and not list(tmp_path.iterdir())
    sha = adapter_sha256(blendshape_models_dir / "exp_adapter" / "exp_adapter.bin")
    assert not cache_bridge_path(sha).exists()


def test_fit_never_writes_over_a_file_that_is_not_a_bridge(tiny_models_dir, landmarker_path, tmp_path, capsys, shared_dir):
    out = tmp_path / "notes.safetensors"
    out.write_text("mine")
    code = main(["bridge", "fit", "--models", str(tiny_models_dir), "--videos", str(shared_dir / "media" / "driver_d0.mp4"),
                 "--landmarker", str(landmarker_path), "--out", str(out)])
    assert code == 2 and "is not an expression bridge" in _one_line_error(capsys)
    assert out.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.safetensors"]


def test_bad_numbers_and_mixed_options_are_refused(tiny_models_dir, tmp_path, capsys):
    assert main(["bridge", "fit", "--models", str(tiny_models_dir), "--renders", "0"]) == 2
    assert "--renders must be at least 1" in _one_line_error(capsys)
    assert main(["bridge", "fit", "--models", str(tiny_models_dir), "--videos", "x.mp4", "--work", str(tmp_path)]) == 2
    assert "belong to --renders" in _one_line_error(capsys)
    assert not list(tmp_path.iterdir())


def test_eval_and_show_without_a_bridge_name_the_fit_command(tiny_models_dir, tmp_path, capsys, shared_dir, monkeypatch,
                                                             landmarker_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = main(["bridge", "eval", "--models", str(tiny_models_dir), "--videos", str(shared_dir / "media" / "driver_d0.mp4"),
                 "--landmarker", str(landmarker_path), "--json", str(tmp_path / "r.json")])
    assert code == 2 and "retarget bridge fit" in _one_line_error(capsys)
    assert main(["bridge", "show", "--models", str(tiny_models_dir)]) == 2
    assert "retarget bridge fit" in _one_line_error(capsys)
    assert not (tmp_path / "r.json").exists() and not cache_bridge_path("0" * 64).parent.exists()


def test_show_prints_the_bridge_found_and_its_report(tiny_models_dir, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sha = adapter_sha256(tiny_models_dir / "exp_adapter" / "exp_adapter.bin")
    path = _bridge_for(tiny_models_dir, cache_bridge_path(sha))
    assert main(["bridge", "show", "--models", str(tiny_models_dir)]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and "samples: 50" in out and "0.500" in out


def test_eval_on_tiny_models_counts_every_render_without_a_face(tiny_models_dir, landmarker_path, tmp_path, capsys, shared_dir):
    bridge = _bridge_for(tiny_models_dir, tmp_path / "bridge.safetensors")
    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "d0.mp4", frames=10)
    report = tmp_path / "eval.json"
    code = main(["bridge", "eval", "--models", str(tiny_models_dir), "--videos", str(clip), "--bridge", str(bridge),
                 "--landmarker", str(landmarker_path), "--frames", "2", "--steps", "1", "--device", "cpu", "--json", str(report)])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "bridge: MediaPipe found a face in 0 of 2 renders (2 without a face, not scored)" in out
    assert "smirk: MediaPipe found a face in 0 of 2 renders" in out
    result = json.loads(report.read_text())
    assert result["frames"] == 2
    for path in ("bridge", "smirk"):
        assert result[path]["no_face"] == 2 and result[path]["faces_found"] == 0
        assert set(result[path]["mean_abs_error"]) == {"brows", "eyes", "mouth", "jaw", "cheeks", "nose", "all"}
        assert all(value is None for value in result[path]["mean_abs_error"].values())


def test_a_bridge_for_another_adapter_or_not_a_bridge_is_refused_in_one_line(tiny_models_dir, tmp_path, capsys, shared_dir):
    other = ExpressionBridge(np.zeros((52, 55)), np.zeros(55), "f" * 64, {}).save(tmp_path / "other.safetensors")
    code = main(["bridge", "eval", "--models", str(tiny_models_dir), "--videos", str(shared_dir / "media" / "driver_d0.mp4"),
                 "--bridge", str(other)])
    assert code == 2 and "another Expression Adapter" in _one_line_error(capsys)
    junk = tmp_path / "junk.safetensors"
    junk.write_text("junk")
    assert main(["bridge", "show", str(junk)]) == 2
    assert "not an expression bridge" in _one_line_error(capsys)


def test_fit_from_tiny_renders_reports_that_mediapipe_found_no_face(tiny_models_dir, landmarker_path, tmp_path, capsys):
    out = tmp_path / "b.safetensors"
    code = main(["bridge", "fit", "--models", str(tiny_models_dir), "--samples", "2", "--batch-size", "2", "--steps", "1",
                 "--device", "cpu", "--landmarker", str(landmarker_path), "--work", str(tmp_path / "work"), "--out", str(out)])
    assert code == 2
    assert "no face in any of the 2 renders" in _one_line_error(capsys)
    assert not out.exists() and (tmp_path / "work" / "batch_000000.npz").is_file()  # the renders are kept for a rerun
