"""The command line's first seconds: one stderr line per stage, each with the time since the command began, so a
long model load never looks like a hang; the summary then reports one total time."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class StageLog:
    """`with log.stage("loading the models"):` prints "[  0.4 s] loading the models..." then "[ 12.3 s] ... done"."""

    def __init__(self, stream=None) -> None:
        self.stream = stream
        self.started = time.perf_counter()
        self.durations: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def line(self, text: str) -> None:
        print(f"[{self.elapsed():6.1f} s] {text}", file=self.stream or sys.stderr, flush=True)

    @contextmanager
    def stage(self, name: str):
        began = time.perf_counter()
        self.line(f"{name}...")
        yield
        self.durations[name] = time.perf_counter() - began
        self.line(f"{name}: done ({self.durations[name]:.1f} s)")


def is_stage_line(line: str) -> bool:
    """A progress line of StageLog (informational, like a `note:`)."""
    return line.startswith("[") and " s] " in line[:12]
