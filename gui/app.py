"""The desktop app: its options and the window's start. `retarget` (retarget_launcher) parses the options once
and calls run(); `python -m gui.app` parses them here."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from retarget.config import ModelOptions
from retarget.config.cli_options import add_knob_options
from retarget.errors import OneLineArgumentParser

# The model knobs the app takes on its command line (generated from retarget.config.models, like the CLI's);
# the rest of ModelOptions is a headless render's, or a setting in the window.
APP_MODEL_KNOBS = ("models", "landmarker", "device", "smirk", "lcm_lora")


def parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="retarget", description="ID-consistent facial expression retargeting (desktop app); "
                                "--models also comes from $RETARGET_MODELS, --device defaults to the last one used")
    # --device None: the window picks the last device used, else auto.
    add_knob_options(p, ModelOptions, only=APP_MODEL_KNOBS,
                     defaults={"models": os.environ.get("RETARGET_MODELS", "hub"), "device": None})
    p.add_argument("--identity", type=Path, default=None, help="identity photo to load at start")
    p.add_argument("--driver", type=Path, default=None, help="driver video to select at start")
    return p


def option_strings() -> list[str]:
    """Every flag the app takes, in the order --help lists them (the launcher names them when refusing others)."""
    return [flag for action in parser()._actions for flag in action.option_strings if flag.startswith("--") and flag != "--help"]


def follow_system_colour_scheme(app) -> None:
    """A dark desktop gets a dark window: the Fusion style draws every control from the system's palette."""
    from PyQt6.QtCore import Qt

    hints = app.styleHints()
    if hasattr(hints, "colorScheme") and hints.colorScheme() == Qt.ColorScheme.Dark:
        app.setStyle("Fusion")


def main(argv: list[str] | None = None) -> int:
    return run(parser().parse_args(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace) -> int:
    """Open the window on the parsed options and run the event loop; the exit code."""
    from PyQt6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("retarget")
    app.setApplicationName("retarget")
    follow_system_colour_scheme(app)
    window = MainWindow(models=args.models, landmarker_path=args.landmarker, device=args.device, smirk_path=args.smirk,
                        lcm_lora=args.lcm_lora)
    if args.identity:
        window.load_identity(args.identity)
    if args.driver:
        window.add_video_driver(args.driver)
    window.show()
    _quit_on_signals(app)
    code = app.exec()
    window.close()  # saves settings, stops the stream and closes a recording properly
    return code


def _quit_on_signals(app) -> None:
    """Ctrl-C / SIGTERM end the event loop cleanly (the CLI's handler would raise inside a Qt slot)."""
    import signal

    from PyQt6.QtCore import QTimer

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: app.quit())
    # Python runs signal handlers only when it gets control: a cheap periodic wake-up gives it that.
    app._signal_timer = QTimer(interval=250)
    app._signal_timer.timeout.connect(lambda: None)
    app._signal_timer.start()


if __name__ == "__main__":
    sys.exit(main())
