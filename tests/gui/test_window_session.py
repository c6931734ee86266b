"""The app drives retarget.session: models, identity, live start/stop and renders go through the Session's
calls, and its state changes reach the window through the bridge (structural: which calls, in which order)."""

from __future__ import annotations

from unittest import mock

from retarget.config.models import ModelOptions
from retarget.session import Session
from retarget.session.states import State


def _spy(name):
    return mock.patch.object(Session, name, autospec=True, side_effect=getattr(Session, name))


def test_the_window_goes_through_the_session(qtbot, make_window, shared_dir, tmp_path):
    media = shared_dir / "media"
    with _spy("begin_load") as load, _spy("set_identity") as identity, _spy("begin_live") as live, \
            _spy("begin_stop") as stop, _spy("begin_render") as render, _spy("cancel_render") as cancel:
        window = make_window(media / "identity_hepburn_small.png")
        assert load.call_count == 1 and identity.call_count == 1
        # The models travel as one ModelOptions: the window's files and the form's device, nothing unpacked.
        options = load.call_args.args[1]
        assert isinstance(options, ModelOptions) and not load.call_args.kwargs.keys() & {"device", "landmarker", "smirk"}
        assert (options.models, options.landmarker) == (window.models_spec, window.landmarker_path)
        assert window.session.model_options == options
        assert window.session.state is State.READY and window.context is window.session.identity
        seen = []
        window.bridge.state_changed.connect(lambda old, new: seen.append((old, new)))
        window.add_video_driver(media / "driver_d0.mp4")
        with qtbot.waitSignal(window.stream_started, timeout=20000):
            window.start_stream()
        assert live.call_count == 1 and window.session.live_running
        with qtbot.waitSignal(window.stream_stopped, timeout=20000):
            window.stop_stream()
        assert stop.call_count == 1 and window.session.state is State.READY
        window.start_render(media / "driver_d0.mp4", tmp_path / "render.mp4", batch_size=2)
        assert render.call_count == 1 and window.session.state is State.RENDERING
        assert not window.render_button.isEnabled() and not window.start_button.isEnabled()
        qtbot.waitUntil(lambda: window.render_bar.value() >= 1, timeout=60000)
        with qtbot.waitSignal(window.render_finished, timeout=30000):
            window.cancel_render()
        assert cancel.call_count >= 1
    qtbot.waitUntil(lambda: len(seen) >= 4, timeout=5000)
    assert seen == [(State.READY, State.STREAMING), (State.STREAMING, State.READY),
                    (State.READY, State.RENDERING), (State.RENDERING, State.READY)]
    assert not window.error_messages


def test_a_second_start_while_the_driver_opens_is_ignored(qtbot, make_window, shared_dir):
    """The session is streaming the moment Start is clicked, so a second click starts nothing."""
    media = shared_dir / "media"
    window = make_window(media / "identity_hepburn_small.png")
    window.add_video_driver(media / "driver_d0.mp4")
    with _spy("begin_live") as live:
        with qtbot.waitSignal(window.stream_started, timeout=20000):
            window.start_stream()
            assert window.session.state is State.STREAMING
            window.start_stream()
            window.toggle_stream()  # while opening: neither starts nor stops
    assert live.call_count == 1
    with qtbot.waitSignal(window.stream_stopped, timeout=20000):
        window.stop_stream()
    assert not window.error_messages
