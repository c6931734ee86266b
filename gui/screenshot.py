"""`python -m gui.screenshot OUT.png [--models random:tiny]`: the window live on the shared media, grabbed to a PNG."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gui.screenshot", description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--models", default=os.environ.get("RETARGET_MODELS", "hub"))
    p.add_argument("--landmarker", default=None)
    p.add_argument("--identity", type=Path, default=MEDIA / "identity_hepburn_small.png")
    p.add_argument("--driver", type=Path, default=MEDIA / "driver_d0.mp4")
    p.add_argument("--frames", type=int, default=6, help="output frames to wait for before the grab")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds before giving up")
    args = p.parse_args(argv)

    from PyQt6.QtCore import QSettings, QTimer
    from PyQt6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    # A throwaway settings file: a screenshot shows defaults and never touches the user's settings.
    store = QSettings(str(Path(tempfile.mkdtemp()) / "screenshot.ini"), QSettings.Format.IniFormat)
    window = MainWindow(models=args.models, landmarker_path=args.landmarker, settings=store, probe_cameras=False)
    window.panel.set_preset("fast")
    window.resize(1400, 800)
    window.show()
    result = {"code": 1}

    def fail(text: str) -> None:
        print(f"screenshot: {text}", file=sys.stderr)
        app.exit(1)

    def grab_when_ready() -> None:
        if window.output_view.frames_shown >= args.frames and window.driver_view.frames_shown > 0:
            poll.stop()
            window.stop_recording()
            app.processEvents()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            if window.grab().save(str(args.out)):
                print(f"wrote {args.out}")
                result["code"] = 0
                app.exit(0)
            else:
                fail(f"cannot write {args.out}")

    poll = QTimer(interval=100)
    poll.timeout.connect(grab_when_ready)
    window.error_shown.connect(fail)
    window.models_loaded.connect(lambda: window.load_identity(args.identity))
    window.add_video_driver(args.driver)
    window.identity_loaded.connect(lambda _: (window.start_stream(), poll.start()))
    # The first frames on a cold CPU are slow and a short driver can end before enough arrive: loop it.
    window.stream_stopped.connect(lambda reason: reason == "ended" and poll.isActive() and window.start_stream())
    QTimer.singleShot(int(args.timeout * 1000), lambda: fail("timed out waiting for frames"))
    code = app.exec()
    window.close()
    return result["code"] if code == 0 else code


if __name__ == "__main__":
    sys.exit(main())
