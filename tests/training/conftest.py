"""Fixtures for the training tests: one annotated dataset of ../shared/media per session, single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

LANDMARKER = ("--landmarker",)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """Tiny models on a shared 2-core machine run ~50x faster single-threaded (no OpenMP spinning)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def dataset_dir(shared_dir, landmarker_path, tiny_models_dir, tmp_path_factory) -> Path:
    """../shared/media annotated (every 8th video frame), with two worker processes."""
    from training.annotate import main

    out = tmp_path_factory.mktemp("data") / "faces"
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        rc = main([str(shared_dir / "media"), "--out", str(out), "--every", "8", "--models", str(tiny_models_dir),
                   "--landmarker", str(landmarker_path), "--workers", "2"])
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old
    assert rc == 0
    return out


def losses(out: Path) -> list[float]:
    import json

    return [json.loads(line)["loss"] for line in (out / "losses.jsonl").read_text().splitlines()]
