"""retarget.session: the transition table, the events of a still render and of a live stream, stopping,
failures, and the CLI driving it (the app's side is tests/gui/test_window_session.py)."""

from __future__ import annotations

import itertools
import threading
import time
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest

from retarget.config.models import ModelOptions
from retarget.errors import BadInputError, MissingModelFile, RetargetError
from retarget.session import Session
from retarget.session.states import REFUSALS, State, TRANSITIONS, TransitionRefused
from retarget.config.generation import GenerationSettings

FAST = GenerationSettings(steps=2)


class Recorder:
    """Every event of a session, in order, as (name, *args)."""

    def __init__(self, session):
        self.events: list[tuple] = []
        self._lock = threading.Lock()
        session.on_event(self)

    def __call__(self, name, *args):
        with self._lock:
            self.events.append((name, *args))

    def names(self) -> list[str]:
        return [e[0] for e in self.events]

    def states(self) -> list[tuple[State, State]]:
        return [(e[1], e[2]) for e in self.events if e[0] == "state_changed"]


# ---------------------------------------------------------------------- the table
def test_the_table_covers_every_pair_once():
    pairs = set(itertools.product(State, State))
    assert set(TRANSITIONS) | set(REFUSALS) == pairs
    assert not set(TRANSITIONS) & set(REFUSALS)


@pytest.mark.parametrize("current, wanted", list(itertools.product(State, State)), ids=lambda s: s.value)
def test_every_transition_is_allowed_or_refused_with_what_to_do(current, wanted):
    session = Session()
    session._state = current
    events = Recorder(session)
    if (current, wanted) in TRANSITIONS:
        session._enter(wanted)
        assert session.state is wanted
        assert events.events == [("state_changed", current, wanted)]
    else:
        with pytest.raises(TransitionRefused) as refused:
            session._enter(wanted)
        message = str(refused.value)
        assert message == REFUSALS[(current, wanted)] and "\n" not in message and message[0].isupper()
        assert isinstance(refused.value, RetargetError)  # the CLI prints it as one line, exit code 2
        assert (refused.value.current, refused.value.wanted) == (current, wanted)
        assert session.state is current and events.events == []


class FakePipeline:
    image_size = 16

    def __init__(self):
        self.calls = 0

    def generate(self, context, expressions, settings, **kwargs):
        self.calls += 1
        return np.full((len(expressions), 16, 16, 3), self.calls % 255, np.uint8)


class FakeAnalyzer:
    frames_without_face = 0
    closed = False

    def __call__(self, frame, capture_time=None):
        from retarget.engine.driving import DrivenFrame

        zeros = np.zeros(52, np.float32)
        return DrivenFrame(frame.index, frame.time, frame.image, zeros, zeros, True, capture_time)

    def set_neutral_from(self, values):
        self.neutral = values

    def close(self):
        self.closed = True


def test_the_calls_refuse_in_the_wrong_state():
    session = Session()
    with pytest.raises(TransitionRefused, match="Load the models first, then start the stream"):
        session.begin_live("webcam:0", settings=FAST)
    with pytest.raises(RetargetError, match="Load the models first, then change the identity"):
        session.set_identity(image=np.zeros((8, 8, 3), np.uint8))
    ready = Session.with_retargeter(SimpleNamespace(pipeline=FakePipeline()))
    with pytest.raises(RetargetError, match="Choose an identity photo first"):
        ready.begin_live("webcam:0", settings=FAST)
    ready.identity = "identity"
    with pytest.raises(RetargetError, match="No live stream is running"):
        ready.begin_stop()
    ready._state = State.RENDERING
    with pytest.raises(TransitionRefused, match="cancel it or wait"):
        ready.begin_live("webcam:0", settings=FAST)
    with pytest.raises(RetargetError, match="An offline render is running; cancel it or wait for it to finish, then change"):
        ready.set_identity(image=np.zeros((8, 8, 3), np.uint8))


# ---------------------------------------------------------------------- what the UI reads of the models
def test_without_models_the_properties_say_none():
    session = Session()
    assert (session.adapter_kind, session.image_size, session.device, session.has_lcm, session.bridge) == \
        (None, None, None, False, None)


def test_the_properties_are_the_loaded_models():
    pipeline = SimpleNamespace(expression_kind="blendshapes52", image_size=64, device="cpu", has_lcm=True)
    bridge = object()
    session = Session.with_retargeter(SimpleNamespace(pipeline=pipeline, bridge=bridge))
    assert (session.adapter_kind, session.image_size, session.device, session.has_lcm, session.bridge) == \
        ("blendshapes52", 64, "cpu", True, bridge)


def test_composed_expressions_render_through_the_state_table_with_their_frames():
    """render_expressions (the composer, the track preview) moves READY -> RENDERING -> READY and passes each
    vector's frame index (its seeded noise) to the generator."""
    seen = []

    class Retargeter:
        def render(self, context, expressions, settings, progress=False, frame_indices=None):
            seen.append((session.state, context, expressions.shape, frame_indices))
            return np.zeros((len(expressions), 8, 8, 3), np.uint8)

    session = Session.with_retargeter(Retargeter(), identity="identity")
    events = Recorder(session)
    images = session.render_expressions(np.zeros((1, 52)), settings=FAST, frame_indices=[7])
    assert images.shape == (1, 8, 8, 3)
    assert seen == [(State.RENDERING, "identity", (1, 52), [7])]
    assert events.states() == [(State.READY, State.RENDERING), (State.RENDERING, State.READY)]
    session._state = State.STREAMING  # a live stream holds the generator: the call is refused, as the table says
    with pytest.raises(TransitionRefused, match="Stop the live stream first, then render"):
        session.render_expressions(np.zeros((1, 52)), settings=FAST)
    assert len(seen) == 1


# ---------------------------------------------------------------------- failures
def test_a_failure_while_loading_returns_to_idle_with_an_error_event(tmp_path):
    session = Session()
    events = Recorder(session)
    with pytest.raises(MissingModelFile) as failed:
        session.load_models(str(tmp_path / "nowhere"))
    assert failed.value.kind == "models"
    assert session.state is State.IDLE and session.retargeter is None
    assert events.names() == ["state_changed", "state_changed", "error"]
    assert events.states() == [(State.IDLE, State.LOADING), (State.LOADING, State.IDLE)]
    _, message, error, during = events.events[-1]
    assert during == "load" and error is failed.value and "nowhere" in message and "\n" not in message
    session.close()  # nothing loaded: nothing to do


def test_a_driver_that_cannot_open_returns_to_ready(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    session = Session.with_retargeter(SimpleNamespace(pipeline=FakePipeline()), identity="identity")
    events = Recorder(session)
    with pytest.raises(BadInputError):
        session.start_live(str(broken), settings=FAST, analyzer=FakeAnalyzer())
    assert session.state is State.READY and session.stream is None
    assert events.states() == [(State.READY, State.STREAMING), (State.STREAMING, State.READY)]
    assert events.events[-1][0] == "error" and events.events[-1][3] == "open"


def test_stopped_while_the_driver_opens_closes_what_it_opened(monkeypatch):
    import retarget.media.sources as sources

    class Camera:
        closed = False

        def close(self):
            self.closed = True

    camera, analyzer = Camera(), FakeAnalyzer()
    monkeypatch.setattr(sources, "open_source", lambda spec: camera)
    session = Session.with_retargeter(SimpleNamespace(pipeline=FakePipeline()), identity="identity")
    open_and_start = session.begin_live("webcam:0", settings=FAST, analyzer=analyzer)
    assert session.state is State.STREAMING and session.opening and not session.live_running
    session.begin_stop()()  # ready at once: nothing has run on the pipeline yet
    assert session.state is State.READY
    assert open_and_start() is None  # the opening ends: it sees the stop and closes both
    assert camera.closed and analyzer.closed and session.stream is None and session.state is State.READY


# ---------------------------------------------------------------------- real models
@pytest.fixture(scope="module")
def loaded(tiny_models_dir, landmarker_path, shared_dir):
    session = Session()
    session.load_models(ModelOptions(models=str(tiny_models_dir), device="cpu", landmarker=landmarker_path))
    session.set_identity(shared_dir / "media" / "identity_hepburn_small.png")
    yield session
    session.close()
    assert session.state is State.IDLE


def test_still_render_events_in_order(loaded, shared_dir, tmp_path):
    from retarget.face.image_io import load_image

    events = Recorder(loaded)
    out = tmp_path / "still.png"
    image = loaded.render_still(load_image(shared_dir / "media" / "expression_exp1_rgba.png"), out, settings=FAST)
    assert image.shape == loaded.identity_image.shape and out.is_file()  # the full frame: the identity photo's size
    assert events.names() == ["state_changed", "progress", "frame", "progress", "state_changed"]
    assert events.states() == [(State.READY, State.RENDERING), (State.RENDERING, State.READY)]
    assert events.events[1][1:] == (0, 1) and events.events[3][1:] == (1, 1)
    assert events.events[2][1].image is image
    assert loaded.state is State.READY


def test_short_live_stream_events_recording_and_stop(loaded, shared_dir, tmp_path):
    events = Recorder(loaded)
    two, count = threading.Event(), itertools.count(1)
    loaded.on("frame", lambda result: two.set() if next(count) >= 2 else None)
    sink = loaded.start_recording(tmp_path / "rec.mp4")
    stream = loaded.start_live(str(shared_dir / "media" / "driver_d0.mp4"), settings=FAST)
    assert stream is loaded.stream and loaded.live_running and loaded.analyzer is stream.analyzer
    assert two.wait(timeout=120)
    loaded.stop_live()
    stopped_at = time.monotonic()
    assert loaded.state is State.READY and loaded.stream is None and loaded.analyzer is None
    names = events.names()
    assert names[0] == "state_changed" and names[-1] == "state_changed"
    assert events.states() == [(State.READY, State.STREAMING), (State.STREAMING, State.READY)]
    body = names[1:-1]
    # Every perceived driver frame is an event of its own, from before the first output on (the app's driver pane).
    assert body.index("driven") < body.index("frame") and body.count("driven") >= body.count("frame")
    body = [name for name in body if name != "driven"]
    assert body and body == ["frame", "stats"] * (len(body) // 2)  # each frame, then the numbers it updated
    frames = [e[1] for e in events.events if e[0] == "frame"]
    assert all(f.image.shape[-1] == 3 and f.driven is not None and f.stats is stream.stats for f in frames)
    recorded, _ = loaded.stop_recording()
    assert recorded is sink and sink.frames_written == len(frames)
    sink.close(end_time=stopped_at)
    assert (tmp_path / "rec.mp4").stat().st_size > 0


def test_video_render_goes_through_the_resumable_job(loaded, shared_dir, tmp_path):
    from retarget.config.render import RenderOptions
    from tests.conftest import cut_clip

    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "clip.mp4", 3)
    events = Recorder(loaded)
    summaries = loaded.render_videos([clip], tmp_path / "out.mp4", settings=FAST, mapping=None,
                                     options=RenderOptions(batch_size=2, progress=False))
    assert [s.rendered for s in summaries] == [3] and (tmp_path / "out.mp4").is_file()
    progress = [e[1:] for e in events.events if e[0] == "progress"]
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert events.states() == [(State.READY, State.RENDERING), (State.RENDERING, State.READY)]


# ---------------------------------------------------------------------- the CLI drives it
def _spy(name):
    return mock.patch.object(Session, name, autospec=True, side_effect=getattr(Session, name))


def test_the_cli_renders_through_the_session(tmp_path, tiny_models_dir, landmarker_path, shared_dir):
    from retarget.cli import main
    from tests.conftest import cut_clip

    media = shared_dir / "media"
    common = ["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "1",
              "--identity", str(media / "identity_hepburn_small.png")]
    clip = cut_clip(media / "driver_d0.mp4", tmp_path / "clip.mp4", 2)
    with _spy("load_models") as load, _spy("set_identity") as identity, _spy("render_still") as still, \
            _spy("render_videos") as videos, _spy("close") as close:
        assert main([*common, "--driver", str(media / "expression_exp1_rgba.png"), "--out", str(tmp_path / "o.png")]) == 0
        assert (load.call_count, identity.call_count, still.call_count, videos.call_count) == (1, 1, 1, 0)
        assert main([*common, "--driver", str(clip), "--out", str(tmp_path / "o.mp4")]) == 0
        assert (load.call_count, identity.call_count, still.call_count, videos.call_count) == (2, 2, 1, 1)
    assert close.call_count == 2 and (tmp_path / "o.png").is_file() and (tmp_path / "o.mp4").is_file()


def test_the_cli_webcam_path_streams_and_records_through_the_session(tmp_path, shared_dir):
    from retarget.cli.live import run_live
    from tests.conftest import cut_clip

    session = Session.with_retargeter(SimpleNamespace(pipeline=FakePipeline()), identity="identity")
    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "clip.mp4", 5)
    with _spy("start_recording") as record, _spy("start_live") as live, _spy("stop_live") as stop:
        assert run_live(session, str(clip), tmp_path / "rec.mp4", FAST, analyzer=FakeAnalyzer()) == 0
    assert (record.call_count, live.call_count, stop.call_count) == (1, 1, 1)
    assert session.state is State.READY and (tmp_path / "rec.mp4").stat().st_size > 0
