"""`retarget` with no arguments (or only the options below): the desktop app."""

from __future__ import annotations

import argparse
import os
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="retarget", description="ID-consistent facial expression retargeting (desktop app)")
    p.add_argument("--models", default=os.environ.get("RETARGET_MODELS", "hub"),
                   help="hub (default), a models folder, or random:tiny (TEST models: output is noise); "
                        "also from $RETARGET_MODELS")
    p.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task (default: $RETARGET_FACE_LANDMARKER, cache, download)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (default: the last one used, else auto)")
    p.add_argument("--smirk", default=None, help="SMIRK_em1.pt for FLAME-55 adapters (default: MODELS/smirk/SMIRK_em1.pt)")
    p.add_argument("--lcm-lora", default=None, metavar="SRC",
                   help="load the LCM-LoRA (latent-consistency/lcm-lora-sdv1-5, a folder or file): offers the 'Fast live (LCM)' preset")
    p.add_argument("--identity", default=None, help="identity photo to load at start")
    p.add_argument("--driver", default=None, help="driver video to select at start")
    return p


def follow_system_colour_scheme(app) -> None:
    """A dark desktop gets a dark window: the Fusion style draws every control from the system's palette."""
    from PyQt6.QtCore import Qt

    hints = app.styleHints()
    if hasattr(hints, "colorScheme") and hints.colorScheme() == Qt.ColorScheme.Dark:
        app.setStyle("Fusion")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
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
