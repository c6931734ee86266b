"""Shared fixtures: ../shared (real media + MediaPipe model) and tiny random model sets."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_REASON = "../shared (real media and MediaPipe model) not present"
needs_shared = pytest.mark.skipif(not (SHARED / "media").is_dir(), reason=SHARED_REASON)
# A test that asks for one of these (itself or through another fixture) reads ../shared.
SHARED_FIXTURES = frozenset({"shared_dir", "landmarker_path"})


def pytest_collection_modifyitems(config, items):
    """The `media` tier is every test that reads ../shared (by fixture or the needs_shared mark), so that
    `-m "not media and not timing"` selects the deterministic tier: no real media, no wall-clock figures."""
    for item in items:
        by_fixture = SHARED_FIXTURES & set(getattr(item, "fixturenames", ()))
        by_mark = any(mark.name == "skipif" and mark.kwargs.get("reason") == SHARED_REASON for mark in item.iter_markers())
        if by_fixture or by_mark:
            item.add_marker(pytest.mark.media)


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
    from retarget.weights.testmodels import write_test_models

    return write_test_models(tmp_path_factory.mktemp("models") / "tiny", size="tiny", progress=lambda *_: None)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Keep tests away from the user's caches and the network."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("HF_HOME", str(cache / "huggingface"))


@pytest.fixture(scope="session")
def blendshape_models_dir(tmp_path_factory) -> Path:
    """Tiny random models whose Expression Adapter takes the 52 MediaPipe blendshapes (no SMIRK)."""
    from retarget.weights.testmodels import write_test_models

    return write_test_models(tmp_path_factory.mktemp("models") / "tiny52", size="tiny", exp_dim=52, progress=lambda *_: None)


def cut_clip(source: Path, out: Path, frames: int) -> Path:
    """The first `frames` frames of a video, re-encoded (no audio): short drivers for slow paths."""
    import av

    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream_in = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=stream_in.average_rate)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out
