"""Calibrating the bridge end to end: from a real video (MediaPipe + SMIRK), from renders (stand-in photos and the
real tiny generator), the resumable work folder, and faces MediaPipe misses counted, never hidden."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import BadInputError, JobInterrupted
from retarget.expression.bridge import ExpressionBridge, adapter_sha256, default_output, load_bridge_for
from tests.conftest import cut_clip

PHOTOS = ("identity_freeman.jpg", "identity_hepburn_small.png", "identity_jackie_wide.png", "identity_painting_s9.jpg",
          "expression_exp1_rgba.png", "noface_alpaca_s23.jpg")  # MediaPipe finds a face in all but the alpaca


def _adapter(models_dir):
    return models_dir / "exp_adapter" / "exp_adapter.bin"


@pytest.fixture(scope="module")
def short_driver(tmp_path_factory, shared_dir):
    return cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path_factory.mktemp("clip") / "d0.mp4", frames=20)


def test_video_fit_writes_a_loadable_bridge_where_the_loader_looks(tiny_models_dir, landmarker_path, short_driver, capsys,
                                                                    tmp_path, monkeypatch):
    from retarget.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # other tests expect no bridge for the tiny models

    assert main(["bridge", "fit", "--models", str(tiny_models_dir), "--videos", str(short_driver),
                 "--landmarker", str(landmarker_path), "--device", "cpu"]) == 0
    adapter = _adapter(tiny_models_dir)
    printed = capsys.readouterr().out
    assert f"wrote {default_output(adapter)}" in printed and "held-out R^2" in printed
    found = load_bridge_for(adapter)
    assert found is not None
    report = found.report
    assert report["source"] == "videos" and report["data"]["files"] == [str(short_driver)]
    assert report["samples"] + report["faces_missed"] == report["data"]["frames_looked_at"] == 20
    assert report["samples"] >= 15 and report["held_out"] == round(report["samples"] * 0.2)
    assert set(report["r2"]) == set(report["mae"]) == {"expression", "eyes", "jaw", "all"}
    assert report["model"]["kind"] == "ridge" and report["fitted"]
    assert f"samples: {report['samples']}" in printed


class _StubSmirk:
    """SMIRK's interface without its weights: the video loop is tested here, the encoder in tests/face."""

    def encode(self, image, landmarks):
        return np.full(55, float(np.asarray(landmarks)[:, 1].mean()) / 1000.0, np.float32)


def test_a_cancelled_video_fit_stops_and_writes_nothing(tiny_models_dir, landmarker_path, short_driver, tmp_path):
    from retarget.tools.bridge_jobs import fit_bridge_from_videos

    calls = []
    out = tmp_path / "b.safetensors"
    with pytest.raises(JobInterrupted, match="cancelled"):
        fit_bridge_from_videos([short_driver], models=str(tiny_models_dir), landmarker=landmarker_path, smirk=_StubSmirk(),
                               out=out, progress=lambda done, total: calls.append((done, total)),
                               cancel=lambda: len(calls) >= 3)
    assert len(calls) == 3 and calls[0][1] == 20 and not list(tmp_path.iterdir())


def _photo_renderer(shared_dir, calls=None):
    from retarget.face.image_io import load_image

    photos = [load_image(shared_dir / "media" / name) for name in PHOTOS]

    def render(identities, flame, indices):
        assert identities.shape == (len(indices), 512) and flame.shape == (len(indices), 55)
        np.testing.assert_allclose(np.linalg.norm(identities, axis=1), 1.0, rtol=1e-5)
        if calls is not None:
            calls.append(list(indices))
        return [photos[i % len(photos)] for i in indices]

    return render


def test_synthesis_fit_with_photos_for_renders_counts_the_renders_without_a_face(tiny_models_dir, landmarker_path,
                                                                                 shared_dir, tmp_path):
    from retarget.tools.bridge_jobs import fit_bridge_from_renders

    out = tmp_path / "bridge.safetensors"
    bridge, path = fit_bridge_from_renders(24, models=str(tiny_models_dir), landmarker=landmarker_path,
                                           renderer=_photo_renderer(shared_dir), work=tmp_path / "work", batch_size=6,
                                           out=out)
    assert path == out
    report = ExpressionBridge.load(out, adapter_sha256=adapter_sha256(_adapter(tiny_models_dir))).report
    assert report["source"] == "renders" and report["faces_missed"] == 4  # the alpaca, every 6th render
    assert report["samples"] == 20 and report["held_out"] == 4
    assert "per-group default" in report["data"]["prior"]
    assert report["seconds_per_1000"] is not None and report["seconds_per_1000"] > 0


def test_synthesis_work_folder_resumes_after_a_stop(landmarker_path, shared_dir, tmp_path):
    from retarget.tools.bridge_data import synthesis_pairs

    calls = []
    batches_seen = []

    def stop_after_two():
        return len(batches_seen) >= 2

    with pytest.raises(JobInterrupted, match="kept in"):
        synthesis_pairs(_photo_renderer(shared_dir, calls), landmarker_path, 16, tmp_path / "work", "a" * 64, batch_size=4,
                        progress=lambda done, total: batches_seen.append(done), cancel=stop_after_two)
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7]]
    resumed = synthesis_pairs(_photo_renderer(shared_dir, calls), landmarker_path, 16, tmp_path / "work", "a" * 64,
                              batch_size=4)
    assert calls[2:] == [[8, 9, 10, 11], [12, 13, 14, 15]]  # only the missing batches are rendered
    assert resumed.rendered_now == 8 and resumed.looked_at == 16
    whole = synthesis_pairs(_photo_renderer(shared_dir), landmarker_path, 16, tmp_path / "fresh", "a" * 64, batch_size=4)
    np.testing.assert_array_equal(resumed.pairs.flame, whole.pairs.flame)  # batches are deterministic per index
    assert resumed.faces_missed == whole.faces_missed == 2
    with pytest.raises(BadInputError, match="another calibration"):
        synthesis_pairs(_photo_renderer(shared_dir), landmarker_path, 16, tmp_path / "work", "a" * 64, batch_size=4, seed=1)


def test_the_real_tiny_generator_renders_noise_and_every_miss_is_counted(tiny_models_dir, landmarker_path, tmp_path):
    from retarget.weights.assets import resolve_models
    from retarget.tools.bridge_data import synthesis_pairs
    from retarget.tools.bridge_jobs import settings_text, fit_bridge_from_renders
    from retarget.config.generation import GenerationSettings
    from retarget.pipeline import RetargetPipeline

    files = resolve_models(str(tiny_models_dir), progress=lambda line: None)
    pipeline = RetargetPipeline.from_files(files, "cpu", use_ref_lora=False)
    settings, work, out = GenerationSettings(steps=1), tmp_path / "work", tmp_path / "b.safetensors"
    with pytest.raises(BadInputError, match="no face in any of the 4 renders") as err:
        fit_bridge_from_renders(4, models=files, landmarker=landmarker_path, pipeline=pipeline, settings=settings,
                                work=work, batch_size=2, out=out)
    assert "\n" not in str(err.value) and not out.exists()

    def must_not_render(*args):
        raise AssertionError("the work folder holds every batch")

    # The generator's renders are in the work folder, each counted as a render without a face.
    gathered = synthesis_pairs(must_not_render, landmarker_path, 4, work, adapter_sha256(_adapter(tiny_models_dir)),
                               batch_size=2, job={"settings": settings_text(settings)})
    assert gathered.looked_at == 4 and gathered.faces_missed == 4 and len(gathered.pairs) == 0
    assert gathered.rendered_now == 0 and sorted(p.name for p in work.glob("batch_*")) == ["batch_000000.npz", "batch_000001.npz"]


def test_several_videos_are_one_progress_bar_and_separate_clips(landmarker_path, short_driver):
    from retarget.tools.bridge_data import video_pairs
    from retarget.expression.bridge_fit import tail_split

    calls = []
    gathered = video_pairs([short_driver, short_driver], landmarker_path, _StubSmirk(), every=2,
                           progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (40, 40) and all(total == 40 for _, total in calls)
    assert gathered.looked_at == 20 and len(gathered.pairs) + gathered.faces_missed == 20
    groups = gathered.pairs.groups
    held = tail_split(groups)
    assert set(groups.tolist()) == {0, 1} and held[groups == 0].any() and held[groups == 1].any()
    assert held[np.flatnonzero(groups == 0)[-1]] and not held[np.flatnonzero(groups == 0)[0]]
