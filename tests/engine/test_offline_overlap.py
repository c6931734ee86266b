"""The offline engine's stages overlap on their own threads (issue #23): structure, never times.

A stand-in analyzer and generator record which thread ran them and when; the driver is a folder of
images, so nothing here needs ../shared, MediaPipe or models.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from retarget.config.render import RenderOptions
from retarget.engine.driving import DrivenFrame
from retarget.engine import OfflineRenderer
from retarget.engine.work_folder import WorkFolder
from retarget.config.generation import GenerationSettings

PAUSE = 0.05  # each stand-in stage's work: long enough for the threads to interleave


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[tuple[str, str, float, float]] = []  # (what, thread, start, end)

    def record(self, what: str, start: float) -> None:
        with self.lock:
            self.events.append((what, threading.current_thread().name, start, time.monotonic()))

    def of(self, what: str) -> list[tuple[str, str, float, float]]:
        return [e for e in self.events if e[0] == what]


class StandInAnalyzer:
    expression_kind = "flame55"
    mapping = None
    frames_without_face = 0

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass

    def __call__(self, frame, capture_time=None) -> DrivenFrame:
        start = time.monotonic()
        time.sleep(PAUSE)
        self.recorder.record("perception", start)
        return DrivenFrame(index=frame.index, time=frame.time, image=frame.image, expression=np.zeros(55, np.float32),
                           blendshapes=np.zeros(52, np.float32), face_found=True)


class StandInPipeline:
    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def generate(self, context, expressions, settings, frame_indices=None):
        start = time.monotonic()
        time.sleep(PAUSE)
        self.recorder.record("generate", start)
        return np.stack([np.full((16, 16, 3), i % 256, np.uint8) for i in frame_indices])


@pytest.fixture
def driver(tmp_path):
    folder = tmp_path / "driver"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.full((16, 16, 3), 10 * i, np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.timing
def test_perception_overlaps_generate_and_the_generator_thread_writes_no_file(tmp_path, driver, monkeypatch):
    recorder = Recorder()
    real_write = WorkFolder.write_frame

    def recorded_write(self, index, image):
        start = time.monotonic()
        real_write(self, index, image)
        recorder.record("write", start)

    monkeypatch.setattr(WorkFolder, "write_frame", recorded_write)  # our own class: which thread writes
    renderer = OfflineRenderer(StandInPipeline(recorder), None, lambda: StandInAnalyzer(recorder), GenerationSettings())
    generator_thread = threading.current_thread().name
    summary = renderer.render(str(driver), tmp_path / "out", RenderOptions(batch_size=1, progress=False, lock=False))

    assert summary.rendered == 8
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"frame_{i:06d}.png" for i in range(8)]
    generates, perceptions, writes = recorder.of("generate"), recorder.of("perception"), recorder.of("write")
    assert {e[1] for e in generates} == {generator_thread}
    assert len(writes) == 8 and generator_thread not in {e[1] for e in writes}
    assert generator_thread not in {e[1] for e in perceptions}
    # Perception of a later frame ran while a frame generated (the intervals intersect).
    assert any(p[2] < g[3] and g[2] < p[3] for g in generates for p in perceptions)
    # And a frame was written while another generated.
    assert any(w[2] < g[3] and g[2] < w[3] for g in generates for w in writes)


def test_a_failed_write_stops_the_job_with_its_error(tmp_path, driver, monkeypatch):
    from retarget.errors import OutputError

    def failing_write(self, index, image):
        raise OutputError(f"cannot write frame {index} (no space left on the device)")

    monkeypatch.setattr(WorkFolder, "write_frame", failing_write)
    recorder = Recorder()
    renderer = OfflineRenderer(StandInPipeline(recorder), None, lambda: StandInAnalyzer(recorder), GenerationSettings())
    with pytest.raises(OutputError, match="no space left"):
        renderer.render(str(driver), tmp_path / "out", RenderOptions(batch_size=1, progress=False, lock=False))
    assert not (tmp_path / "out").exists()  # no output under the final name
