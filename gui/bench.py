"""`python -m gui.bench`: how long the UI thread goes without running, while a live stream plays.

A 20 ms timer runs on the UI thread during a live stream; every gap between its ticks beyond the
interval is time the UI could not respond. Printed: the worst gap and the 99th percentile (the
figure the app aims to keep under 50 ms), with the frames shown meanwhile. Nothing is asserted:
the figures depend on the machine and its load (the tests check the structure instead).

    python -m gui.bench --models random:tiny --landmarker ../shared/assets/face_landmarker.task \
        [--slow-generate 0.5] [--seconds 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gui.screenshot import MEDIA
from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.models import ModelOptions


class SlowedPipeline:
    """The loaded pipeline with a fixed extra delay per generate(): a slow GPU on any machine."""

    def __init__(self, inner, delay: float):
        self._inner, self._delay = inner, delay

    def generate(self, *args, **kwargs):
        time.sleep(self._delay)
        return self._inner.generate(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def gap_figures(gaps_ms: list[float]) -> tuple[float, float]:
    """(worst, 99th percentile) of the gaps between UI timer ticks, in ms."""
    values = np.asarray(gaps_ms, np.float64)
    return float(values.max()), float(np.percentile(values, 99))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gui.bench", description="UI responsiveness while a live stream runs")
    add_knob_options(p, ModelOptions, only=("models", "landmarker"), defaults={"models": "random:tiny"},
                     helps={"models": "as for the app; default random:tiny (the UI's responsiveness, not the models', is measured)"})
    p.add_argument("--identity", type=Path, default=MEDIA / "identity_hepburn_small.png")
    p.add_argument("--driver", type=Path, default=MEDIA / "driver_d0.mp4")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to measure (default 10)")
    p.add_argument("--slow-generate", type=float, default=0.5, metavar="S",
                   help="extra seconds per generate(), as on a slow GPU (default 0.5; 0 = as fast as it goes)")
    p.add_argument("--steps", type=int, default=2)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    models = from_args(ModelOptions, args)

    from PyQt6.QtCore import QSettings, Qt, QTimer
    from PyQt6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    store = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(models=models.models, landmarker_path=models.landmarker, settings=store, probe_cameras=False)
    window.panel.set_preset("fast")
    window.panel.steps.setValue(args.steps)
    window.loop_check.setChecked(True)
    window.show()
    gaps: list[float] = []
    state = {"last": 0.0, "shown": 0, "code": 0}

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - state["last"]) * 1000.0)
        state["last"] = now

    timer = QTimer(interval=20)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)

    def models_ready() -> None:
        if args.slow_generate > 0:
            window.retargeter.pipeline = SlowedPipeline(window.retargeter.pipeline, args.slow_generate)
        window.load_identity(args.identity)

    def measure() -> None:
        state["shown"] = window.output_view.frames_shown
        state["last"] = time.perf_counter()
        timer.start()
        QTimer.singleShot(int(args.seconds * 1000), finish)

    def finish() -> None:
        timer.stop()
        app.exit(0)

    def fail(text: str) -> None:
        print(f"gui.bench: {text}", file=sys.stderr)
        state["code"] = 2
        app.exit(2)

    started = {"done": False}

    def first_frame() -> None:
        if not started["done"] and window.output_view.frames_shown > 0:
            started["done"] = True
            measure()

    window.error_shown.connect(fail)
    window.models_loaded.connect(models_ready)
    window.add_video_driver(args.driver)
    window.identity_loaded.connect(lambda _: window.start_stream())
    window.bridge_timer = QTimer(interval=50, timeout=first_frame)
    window.bridge_timer.start()
    app.exec()
    window.bridge_timer.stop()
    shown = window.output_view.frames_shown - state["shown"]
    window.close()
    if state["code"] or not gaps:
        return state["code"] or 2
    worst, p99 = gap_figures(gaps)
    print(f"UI timer every 20 ms for {args.seconds:.0f} s while streaming (generate +{args.slow_generate:.2f} s): "
          f"{len(gaps)} ticks, {shown} frames shown")
    print(f"worst UI gap {worst:.1f} ms, p99 {p99:.1f} ms (goal: p99 under 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
