"""Shared fixtures: ../shared (real media + MediaPipe model) and tiny random model sets."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_shared = pytest.mark.skipif(
    not (SHARED / "media").is_dir(), reason="../shared (real media and MediaPipe model) not present"
)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "media").is_dir():
        pytest.skip("../shared (real media and MediaPipe model) not present")
    return SHARED


@pytest.fixture(scope="session")
def landmarker_path(shared_dir) -> Path:
    return shared_dir / "assets" / "face_landmarker.task"


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """A random tiny model set in the published layout, written once per test session."""
    from retarget.testmodels import write_test_models

    return write_test_models(tmp_path_factory.mktemp("models") / "tiny", size="tiny", progress=lambda *_: None)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Keep tests away from the user's caches and the network."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("HF_HOME", str(cache / "huggingface"))
