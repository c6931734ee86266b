"""What the window says during a live session's first minute and at its end: the output pane's waiting
message, each session state in the status line, the end of a video driver, a slow device's expectation,
and the recording indicator (frames written, and a warning while none arrive)."""

from __future__ import annotations

from gui.recording import elapsed_text
from retarget.session.states import State

STATE_TEXT = {
    State.IDLE: "No models loaded",
    State.LOADING: "Loading the models\u2026",
    State.READY: "Ready",
    State.STREAMING: "Live",
    State.RENDERING: "Rendering\u2026",
}
OUTPUT_PLACEHOLDER = "Output\n(the identity making the driver's expressions)"
# A recording that has had no new frame for this long says so while it records.
RECORDING_STALL_S = 3.0
# Live below this many output frames per second is a slide show: the app says what to expect, once.
SLOW_LIVE_FPS = 1.0


def first_frame_text(waited_s: float) -> str:
    return f"Generating the first frame\u2026 {int(waited_s)} s"


def stream_end_text(frames: int) -> str:
    return f"Video ended after {frames} frames"


def slow_device_text(device: str, out_fps: float, fastest: str) -> str:
    where = "on the CPU" if device == "cpu" else f"on {device}"
    rate = f"{out_fps:.2f} output frames per second" if out_fps > 0 else "well under one output frame per second"
    return (f"Live {where} runs at about {rate}: expect a slide show, not video. "
            f"The fastest loaded preset is '{fastest}'; Render video makes every frame at full quality, offline.")


def recording_text(elapsed_s: float, frames: int, since_last_s: float | None, name: str) -> tuple[str, str]:
    """(indicator text, tooltip): frames written, and a warning while none has arrived for a few seconds."""
    text = f"\u25cf REC {elapsed_text(elapsed_s)} \u00b7 {frames} frame{'s' if frames != 1 else ''}"
    waited = elapsed_s if since_last_s is None else since_last_s
    if waited >= RECORDING_STALL_S:
        what = "no frame yet" if frames == 0 else "no new frame"
        text += f" \u2014 {what} for {int(waited)} s"
    return f"{text}  {name}", ("the live output has not produced a frame for a while: the recording only holds "
                               "generated frames" if waited >= RECORDING_STALL_S else "")


def no_frames_text(elapsed_s: float, path) -> str:
    return (f"Nothing recorded: no output frame arrived in the {elapsed_text(elapsed_s)} of recording, so no file was "
            f"made ({path.name} removed). Wait for the output pane to show frames, then Record.")
