"""`python -m gui.screenshot OUT.png [--scene main|recording|small|error|download|timeline|expression|waiting|render] [--models random:tiny]`.

Scenes: main (the window live on the shared media), recording (the same, recording: red dot,
elapsed time, file name), small (live at 1024x768), error (a missing MediaPipe model: the banner
with its fix buttons), download (the download dialog; its progress is SIMULATED, as the build
machines have no network), timeline (the expression track editor on --track, by default the
driver's blendshapes extracted with `retarget extract`, a range of the mouth scaled, the current
frame previewed), expression (the Compose expression dock: a preset plus a few sliders
moved, a still rendered and, for a FLAME-55 adapter, one coefficient's thumbnails), waiting (Start at the
quality preset: the driver plays while the output pane counts the seconds to the first frame), render (Render
video, its preview showing the frames as they are rendered). Each grabs the window (or the dialog) to a PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.models import ModelOptions

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
SCENES = ("main", "recording", "small", "error", "download", "timeline", "expression", "waiting", "render")


def _simulated_download(counter):
    """Reports like huggingface_hub does, without a network: for the download dialog's screenshot only."""
    bar_class = counter.tqdm_class()
    with counter.lock:
        counter.files = 2
    with bar_class(desc="FoivosPar/Arc2Face/arc2face/diffusion_pytorch_model.safetensors", total=3_438_167_536) as bar:
        for _ in range(10_000):
            time.sleep(0.01)
            bar.update(2_500_000)


def _compose_scene(window, identity: Path, save) -> None:
    """Models -> identity -> open the dock, set a preset and a few sliders -> thumbnails (FLAME) -> still -> grab."""
    from PyQt6.QtCore import QTimer

    composer = window.composer

    def compose(_=None) -> None:
        window.set_view_mode("output")
        composer.action.trigger()
        panel = composer.panel
        if panel.space.kind == "flame55":
            panel.load_preset("eyes closed")
            panel.rows["jaw_open"].slider.setValue(400)
            panel.sections["expression"].toggle.setChecked(True)
            panel.rows["exp_00"].slider.setValue(700)
            composer.thumbnails_ready.connect(lambda _: composer.render_still())
            composer.render_thumbnails(0)
        else:
            panel.load_preset("smile")
            panel.sections["eyes"].toggle.setChecked(False)  # the mouth's smile values in view
            panel.rows["jawOpen"].slider.setValue(300)
            composer.render_still()

    composer.still_rendered.connect(lambda _: QTimer.singleShot(300, lambda: save(window)))
    window.models_loaded.connect(lambda: window.load_identity(identity))
    window.identity_loaded.connect(compose)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gui.screenshot", description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--scene", choices=SCENES, default="main")
    add_knob_options(p, ModelOptions, only=("models", "landmarker"), defaults={"models": os.environ.get("RETARGET_MODELS", "hub")})
    p.add_argument("--identity", type=Path, default=MEDIA / "identity_hepburn_small.png")
    p.add_argument("--driver", type=Path, default=MEDIA / "driver_d0.mp4")
    p.add_argument("--track", type=Path, help="timeline scene: a blendshape CSV (default: extracted from --driver)")
    p.add_argument("--frames", type=int, default=6, help="output frames to wait for before the grab")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds before giving up")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    models = from_args(ModelOptions, args)

    from PyQt6.QtCore import QSettings, QTimer
    from PyQt6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    # A throwaway settings file and recordings folder: a screenshot never touches the user's.
    scratch = Path(tempfile.mkdtemp())
    store = QSettings(str(scratch / "screenshot.ini"), QSettings.Format.IniFormat)
    store.setValue("files/record_dir", str(scratch))
    landmarker = str(scratch / "face_landmarker.task") if args.scene == "error" else models.landmarker
    window = MainWindow(models=models.models, landmarker_path=landmarker, settings=store, probe_cameras=False,
                        autoload=args.scene != "download")
    window.panel.set_preset("fast")
    window.resize(*((1024, 768) if args.scene == "small" else (1400, 980) if args.scene == "timeline" else (1400, 820)))
    window.show()
    result = {"code": 1}

    def save(widget) -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if widget.grab().save(str(args.out)):
            print(f"wrote {args.out}")
            result["code"] = 0
            app.exit(0)
        else:
            fail(f"cannot write {args.out}")

    def fail(text: str) -> None:
        print(f"screenshot: {text}", file=sys.stderr)
        app.exit(1)

    QTimer.singleShot(int(args.timeout * 1000), lambda: fail("timed out"))

    if args.scene == "error":
        window.error_shown.connect(lambda _: QTimer.singleShot(300, lambda: save(window)))
    elif args.scene == "download":
        from gui.downloads import DownloadDialog

        dialog = DownloadDialog("Downloading the models into ~/retarget-models", _simulated_download, total_files=15, parent=window)
        dialog.show()
        dialog.start()
        QTimer.singleShot(2500, lambda: save(dialog))
    elif args.scene == "timeline":
        _timeline_scene(window, args, scratch, save, fail)
    elif args.scene == "expression":
        window.error_shown.connect(fail)
        _compose_scene(window, args.identity, save)
    elif args.scene in ("waiting", "render"):
        _first_minute_scene(window, args, save, fail)
    else:
        _live_scene(app, window, args, save, fail)
    code = app.exec()
    if args.scene == "download":
        dialog.cancel()
        dialog.wait()
    window.close()
    return result["code"] if code == 0 else code


def _live_scene(app, window, args, save, fail) -> None:
    """The main window streaming (and recording, for the recording scene): grabbed once enough frames are shown."""
    from PyQt6.QtCore import QTimer

    def grab_when_ready() -> None:
        if args.scene == "recording" and window.session.live_running and window.outputs.recorder is None:
            window.start_recording()  # as soon as the stream runs: a few seconds on the clock by the grab
        session = window.session
        live = session.live_running and session.stats.rendered >= 1
        if live and window.output_view.frames_shown >= args.frames and window.driver_view.frames_shown > 0:
            recorder = window.outputs.recorder
            if args.scene == "recording" and (recorder is None or recorder.frames_written < 1
                                              or window.outputs.elapsed() < 3.0):
                return
            poll.stop()
            app.processEvents()
            save(window)

    poll = QTimer(window, interval=100)  # the window keeps it
    poll.timeout.connect(grab_when_ready)
    window.error_shown.connect(fail)
    window.models_loaded.connect(lambda: window.load_identity(args.identity))
    window.add_video_driver(args.driver)
    window.loop_check.setChecked(True)  # the first frames on a cold CPU are slow and the clip is short
    window.identity_loaded.connect(lambda _: (window.start_stream(), poll.start()))


def _first_minute_scene(window, args, save, fail) -> None:
    """waiting: Start at the paper's quality preset, grabbed while the driver plays and the output pane says it is
    generating the first frame; render: Render video with its preview, grabbed while it renders."""
    from PyQt6.QtCore import QTimer

    poll = QTimer(window, interval=100)

    def grab_when_ready() -> None:
        if args.scene == "waiting":
            ready = (window.waiting_text or "").startswith("Generating") and window.driver_view.frames_shown >= 3 \
                and (window.session.stats is not None and window.session.stats.waiting_s >= 1.0)
        else:
            ready = window._render_progress is not None and window.output_view.frames_shown >= args.frames
        if ready:
            poll.stop()
            save(window)

    def go(_=None) -> None:
        if args.scene == "waiting":
            window.panel.set_preset("quality")
            window.start_stream()
        else:
            window.start_render(args.driver, Path(tempfile.mkdtemp()) / f"{args.driver.stem}_retargeted.mp4",
                                side_by_side=None)
        poll.start()

    poll.timeout.connect(grab_when_ready)
    window.error_shown.connect(fail)
    window.models_loaded.connect(lambda: window.load_identity(args.identity))
    window.add_video_driver(args.driver)
    window.identity_loaded.connect(go)


def _timeline_scene(window, args, scratch: Path, save, fail) -> None:
    from PyQt6.QtCore import QTimer

    from gui.track_dock import open_track_editor

    track = args.track
    if track is None:
        from retarget.tools.extract import extract_blendshapes

        track = scratch / f"{args.driver.stem}.csv"
        extract_blendshapes(args.driver, track, landmarker=from_args(ModelOptions, args).landmarker, progress=False)

    def edit_and_preview(_=None) -> None:
        dock = open_track_editor(window, track)
        editor = dock.editor
        n = editor.track.frame_count
        editor.select_channels("mouth")
        editor.view.set_selection(n // 3, n // 3 + n // 4)
        editor.set_operation("scale", 1.6)
        editor.apply_current()
        editor.view.set_playhead(n // 3 + n // 8)
        if dock.unavailable_reason() is not None:  # e.g. a FLAME-55 adapter: the editor says why there is no preview
            QTimer.singleShot(500, lambda: save(window))
            return
        editor.preview_check.setChecked(True)
        poll = QTimer(window, interval=200)
        poll.timeout.connect(lambda: dock.previews_generated >= 1 and (poll.stop(), QTimer.singleShot(300, lambda: save(window))))
        poll.start()

    window.error_shown.connect(fail)
    window.models_loaded.connect(lambda: window.load_identity(args.identity))
    window.identity_loaded.connect(edit_and_preview)


if __name__ == "__main__":
    sys.exit(main())
