"""The window's offline render: the same resumable engine job as `retarget --headless`, with progress and Cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PyQt6.QtWidgets import QFileDialog

from gui.workers import RenderProgress, error_text
from retarget.media.kinds import VIDEO_SUFFIXES, file_patterns, is_webcam_spec


class RenderControls:
    """MainWindow's offline render commands (a mixin over the window's state)."""

    def _choose_render(self) -> None:
        driver = self._driver_spec()
        if not driver or is_webcam_spec(driver):
            driver, _ = QFileDialog.getOpenFileName(self, "Driver video to render", "", f"Videos ({file_patterns(VIDEO_SUFFIXES)})")
            if not driver:
                return
        default = Path(self.store.value("files/render_dir", str(Path(driver).parent))) / f"{Path(driver).stem}_retargeted.mp4"
        out, _ = QFileDialog.getSaveFileName(self, "Render to", str(default), "MP4 video (*.mp4)")
        if out:
            self.start_render(driver, out)

    def start_render(self, driver, out, batch_size: int = 4) -> None:
        if self.retargeter is None or self.context is None or self.identity_path is None:
            self.show_error("Load the models and an identity photo before rendering", kind="identity")
            return
        if self.stream_state != "idle" or self._render_task is not None:
            self.show_error("Stop the live stream (or the running render) first", kind="render-busy")
            return
        from retarget.engine import OfflineRenderer, RenderOptions, WorkFolder, job_key

        driver, out = str(driver), Path(out)
        retargeter, context, identity = self.retargeter, self.context, self.identity_path
        mapping, settings = self.panel.mapping_settings(), self.panel.generation_settings()
        faces_key, make_analyzer = self.face_picker.render_job(retargeter, mapping, context, identity, driver)
        cancel = threading.Event()
        progress = RenderProgress(0)
        progress.progressed.connect(self._render_progressed)

        def render():
            from retarget.media.sources import open_source

            key = job_key(identity, self.models_description)  # reads the whole photo: not on the UI thread
            key.update(faces_key)  # another face is another job
            with open_source(driver) as source:
                progress.total = source.frame_count or 0
            progress.progressed.emit(0, progress.total)
            renderer = OfflineRenderer(retargeter.pipeline, context, make_analyzer, settings, key)
            # Same job as the CLI's: resume what a cancelled render of these inputs left behind.
            resume = WorkFolder.for_output(out).holds(renderer.manifest(driver, mapping))
            options = RenderOptions(batch_size=batch_size, resume=resume, progress=False)
            return renderer.render(driver, out, options, cancel=cancel, on_frame=progress.on_frame)

        def done(summary):
            self._render_ended()
            # The outcome stays on screen until dismissed: a render can take hours and finish unattended.
            self.show_notice(
                f"Rendered {summary.frames} frames to {out} ({summary.fps:.1f} frames/s"
                + (f", {summary.frames_without_face} without a face" if summary.frames_without_face else "") + ")",
                kind="render")
            self.render_finished.emit("done")

        def failed(err):
            from retarget.errors import JobInterrupted

            done_frames = progress.done
            self._render_ended()
            if isinstance(err, JobInterrupted):
                self.show_notice(f"Render of {Path(driver).name} cancelled after {done_frames} frames; "
                                 f"render the same video to {out.name} to continue", kind="render")
                self.render_finished.emit("cancelled")
            else:
                self.show_error(f"Render of {Path(driver).name} failed: {error_text(err)}", kind="render")
                self.render_finished.emit("failed")

        self._render_cancel, self._render_progress = cancel, progress
        self.store.setValue("files/render_dir", str(out.parent))
        self.render_bar.setRange(0, 0)
        self.render_eta.setText("starting...")
        self._show_render_row(True)
        self.cancel_button.setEnabled(True)
        self._render_task = self._run(render, done, failed, "render")
        self._update_buttons()

    def _render_progressed(self, done: int, total: int) -> None:
        progress = self._render_progress
        if progress is None:
            return
        if total > 0:
            self.render_bar.setRange(0, total)
            self.render_bar.setValue(done)
        elapsed = time.monotonic() - progress.started
        if done > 0 and total > 0:
            eta = elapsed / done * (total - done)
            self.render_eta.setText(f"ETA {int(eta // 60)}:{int(eta % 60):02d}")

    def cancel_render(self) -> None:
        if self._render_cancel is not None:
            self._render_cancel.set()  # the renderer stops between frames, keeping what it rendered
            self.cancel_button.setEnabled(False)
            self.render_eta.setText("cancelling...")

    def render_frames_done(self) -> int:
        return self._render_progress.done if self._render_progress is not None else 0

    def _render_ended(self) -> None:
        self._render_task = None
        self._render_cancel = None
        self._show_render_row(False)
        self.banner.clear("render-running", "render-busy")
        self._update_buttons()

