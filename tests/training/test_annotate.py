from __future__ import annotations


import numpy as np

from training.annotate import main
from training.data import FaceDataset, read_manifest


def test_annotate_dataset(dataset_dir, shared_dir):
    samples, sources = read_manifest(dataset_dir)
    assert len(sources) == 9  # 2 videos + 7 photos
    alpaca = next(r for r in sources.values() if "alpaca" in r["source"])
    assert alpaca["samples"] == 0 and alpaca["skipped"] == 1
    video = next(r for r in sources.values() if r["source"].endswith("driver_d0.mp4"))
    assert video["kind"] == "video" and video["samples"] == 10  # 78 frames, every 8th
    frames = sorted(s["frame"] for s in samples if s["clip"] == video["clip"])
    assert frames == list(range(0, 78, 8))
    assert len(samples) >= 40
    data = FaceDataset(dataset_dir, "blendshapes52", image_size=64)
    assert data.has_cross_pairs
    crop = data.crop_uint8(0)
    assert crop.shape == (64, 64, 3)
    sample = data.samples[0]
    assert sample.expression.shape == (52,) and abs(np.linalg.norm(sample.arcface) - 1) < 1e-4
    from PIL import Image

    assert Image.open(sample.crop).size == (512, 512)


def test_annotate_rerun_does_no_work_twice(dataset_dir, shared_dir, landmarker_path, tiny_models_dir, capsys):
    manifest = (dataset_dir / "manifest.jsonl").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in dataset_dir.rglob("*") if p.is_file()}
    capsys.readouterr()
    rc = main([str(shared_dir / "media"), "--out", str(dataset_dir), "--every", "8", "--models", str(tiny_models_dir),
               "--landmarker", str(landmarker_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "0 new source(s): 0 samples" in out and "9 source(s) already done" in out
    assert (dataset_dir / "manifest.jsonl").read_bytes() == manifest
    assert {p: p.stat().st_mtime_ns for p in dataset_dir.rglob("*") if p.is_file()} == stamps


def test_annotate_bad_inputs(tmp_path, capsys, landmarker_path, tiny_models_dir):
    rc = main([str(tmp_path / "missing"), "--out", str(tmp_path / "d"), "--models", str(tiny_models_dir),
               "--landmarker", str(landmarker_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "no such file" in err and "Traceback" not in err
