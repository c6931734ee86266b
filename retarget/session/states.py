"""The session's states, the one table of transitions between them, what a refused one says, and its events.

A refused transition raises TransitionRefused: one line that says what to do instead, which the CLI
prints as-is and the app shows in its banner. Events are plain callbacks (no Qt in retarget/).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from retarget.errors import RetargetError


class State(Enum):
    IDLE = "idle"  # no models
    LOADING = "loading"
    READY = "ready"  # models in; identity and driver can change
    STREAMING = "streaming"  # from Start until the stream's last generate() has returned
    RENDERING = "rendering"  # an offline render (a still or video jobs)


IDLE, LOADING, READY, STREAMING, RENDERING = State

# Every allowed transition, and what makes it.
TRANSITIONS: dict[tuple[State, State], str] = {
    (IDLE, LOADING): "load_models",
    (LOADING, READY): "the models are in",
    (LOADING, IDLE): "loading failed",
    (READY, LOADING): "load_models (other models, another device)",
    (READY, STREAMING): "start_live",
    (STREAMING, READY): "stop_live (or cancelled while the driver opened)",
    (READY, RENDERING): "render_still / render_videos",
    (RENDERING, READY): "the render ended: done, failed or cancelled",
    (READY, IDLE): "close",
}

_RENDER_RUNNING = "An offline render is running; cancel it or wait for it to finish"
# Every other transition is refused with what to do instead.
REFUSALS: dict[tuple[State, State], str] = {
    (IDLE, IDLE): "No models are loaded",
    (IDLE, READY): "Load the models first",
    (IDLE, STREAMING): "Load the models first, then start the stream",
    (IDLE, RENDERING): "Load the models first, then render",
    (LOADING, LOADING): "The models are already loading; wait for them",
    (LOADING, STREAMING): "The models are still loading; start again when they are ready",
    (LOADING, RENDERING): "The models are still loading; render when they are ready",
    (READY, READY): "The models are already loaded",
    (STREAMING, IDLE): "Stop the live stream first",
    (STREAMING, LOADING): "Stop the live stream first, then load the models",
    (STREAMING, STREAMING): "The live stream is already running; stop it first",
    (STREAMING, RENDERING): "Stop the live stream first, then render",
    (RENDERING, IDLE): _RENDER_RUNNING,
    (RENDERING, LOADING): f"{_RENDER_RUNNING}, then load the models",
    (RENDERING, STREAMING): _RENDER_RUNNING,
    (RENDERING, RENDERING): _RENDER_RUNNING,
}

# Why something that needs READY cannot happen now (an identity change, a recording).
BUSY = {
    IDLE: "Load the models first",
    LOADING: "The models are still loading; wait for them",
    STREAMING: "Stop the live stream first",
    RENDERING: _RENDER_RUNNING,
}

EVENTS = ("state_changed", "driven", "frame", "stats", "progress", "error")


class TransitionRefused(RetargetError):
    """The current state does not allow what was asked; the message says what to do."""

    def __init__(self, current: State, wanted: State, message: str | None = None):
        super().__init__(message or REFUSALS[(current, wanted)])
        self.current, self.wanted = current, wanted


@dataclass
class FrameResult:
    """One generated frame: the image; for a driven frame, what drove it; live, the stream's stats then."""

    image: np.ndarray
    driven: object = None  # DrivenFrame
    stats: object = None  # LiveStats (live only; the engine keeps updating it)


class EventSource:
    """Callbacks per event name (`on`) or for every event (`on_event`, called as fn(name, *args)); they run on
    the thread that emits, so a UI queues them to its own thread."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Callable]] = {name: [] for name in EVENTS}
        self._any: list[Callable] = []

    def on(self, name: str, callback: Callable) -> Callable:
        if name not in EVENTS:
            raise ValueError(f"no event {name!r}; events: {', '.join(EVENTS)}")
        self._handlers[name].append(callback)
        return callback

    def on_event(self, callback: Callable) -> Callable:
        """callback(name, *args) for every event."""
        self._any.append(callback)
        return callback

    def off(self, name: str, callback: Callable) -> None:
        self._handlers[name].remove(callback)

    def _emit(self, name: str, *args) -> None:
        for callback in list(self._handlers[name]):
            callback(*args)
        for callback in list(self._any):
            callback(name, *args)
