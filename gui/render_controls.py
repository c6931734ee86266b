"""The window's offline render: the same resumable engine job as `retarget --headless`, with progress and Cancel."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QDialog, QFileDialog

from gui.render_dialog import RenderDialog
from gui.render_finish import RenderRate, finished_actions
from gui.workers import RenderProgress
from retarget.errors import RetargetError, user_message
from retarget.names.kinds import VIDEO_SUFFIXES, file_patterns, is_webcam_spec
from retarget.session.states import State


class RenderControls:
    """MainWindow's offline render commands (a mixin over the window's session)."""

    def _choose_render(self) -> None:
        driver = self._driver_spec()
        if not driver or is_webcam_spec(driver):
            driver, _ = QFileDialog.getOpenFileName(self, "Driver video to render", "", f"Videos ({file_patterns(VIDEO_SUFFIXES)})")
            if not driver:
                return
        default = Path(self.store.value("files/render_dir", str(Path(driver).parent))) / f"{Path(driver).stem}_retargeted.mp4"
        dialog = RenderDialog(driver, default, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and str(dialog.out()):
            start, end = dialog.time_range()
            self.start_render(driver, dialog.out(), side_by_side=dialog.side_by_side(), start=start, end=end)

    def start_render(self, driver, out, batch_size: int = 4, side_by_side=None, start: float = 0.0,
                     end: float | None = None) -> bool:
        """Start the render job; False when refused (the banner says why). side_by_side: also write a driver|output
        video there; start/end: only that time range of the driver, in seconds (RenderOptions.start/end)."""
        driver, out = str(driver), Path(out)
        side_by_side = Path(side_by_side) if side_by_side is not None else None
        options = self._render_options(batch_size, side_by_side, start, end)
        if options is None:
            return False
        # The same job as the CLI's: it resumes what a cancelled render of these inputs left behind.
        key_extra, follow_box = self.face_picker.render_choice(self.identity_path, driver)  # the faces picked
        render = self.session.begin_render([driver], out, settings=self.panel.render_generation_settings(),
                                           mapping=self.panel.mapping_settings(), options=options, auto_resume=True,
                                           follow_box=follow_box, key_extra=key_extra)
        progress = self._render_progress = RenderProgress()
        self._render_rate = RenderRate()
        self.driver_view.clear()  # the preview shows this render's frames as they come
        self.output_view.clear()
        self.show_waiting("Rendering: the first frames\u2026")
        self.store.setValue("files/render_dir", str(out.parent))
        self.render_bar.setRange(0, 0)
        self.render_eta.setText("starting...")
        self._show_render_row(True)
        self.cancel_button.setEnabled(True)
        self._run(render, lambda summaries: self._render_done(summaries[0], out, side_by_side),
                  lambda err: self._render_failed(err, driver, out, progress), "render")
        self._update_buttons()
        return True

    def _render_options(self, batch_size: int, side_by_side, start: float, end: float | None):
        """The job's RenderOptions from the form's knobs (e.g. CRF); None, with the banner saying why, when refused."""
        if self.retargeter is None or self.context is None or self.identity_path is None:
            self.show_error("Load the models and an identity photo before rendering", kind="identity")
            return None
        if self.session.state is not State.READY:
            self.show_error("Stop the live stream (or the running render) first", kind="render-busy")
            return None
        from retarget.config.render import RenderOptions

        options = self.panel.options(RenderOptions, batch_size=batch_size, progress=False, side_by_side=side_by_side,
                                     start=start, end=end)
        try:
            options.validate()  # e.g. an end before the start: refused here, in one line
        except RetargetError as err:
            self.show_error(str(err), kind="render")
            return None
        return options

    def _render_done(self, summary, out: Path, side_by_side: Path | None) -> None:
        self._render_ended()
        # The outcome stays on screen until dismissed: a render can take hours and finish unattended.
        self.show_notice(
            f"Rendered {summary.frames} frames to {out}" + (f" and {side_by_side.name}" if side_by_side else "")
            + f" ({summary.fps:.1f} frames/s"
            + (f", {summary.frames_without_face} without a face" if summary.frames_without_face else "") + ")",
            kind="render", actions=finished_actions(out, side_by_side))
        self.render_output = out
        self.render_finished.emit("done")

    def _render_failed(self, err, driver: str, out: Path, progress: RenderProgress) -> None:
        from retarget.errors import JobInterrupted

        done_frames = progress.done
        self._render_ended()
        if isinstance(err, JobInterrupted):
            self.show_notice(f"Render of {Path(driver).name} cancelled after {done_frames} frames; "
                             f"render the same video to {out.name} to continue", kind="render")
            self.render_finished.emit("cancelled")
        else:
            self.show_error(f"Render of {Path(driver).name} failed: {user_message(err)}", kind="render")
            self.render_finished.emit("failed")

    def _render_progressed(self, done: int, total: int) -> None:
        progress = self._render_progress
        if progress is None:
            return
        progress.update(done, total)
        if total > 0:
            self.render_bar.setRange(0, total)
            self.render_bar.setValue(done)
        self.render_eta.setText(self._render_rate.eta_text(done, total))

    def _render_frame_shown(self) -> None:
        """The render's newest frame in the preview (its driver frame beside it), as it is rendered."""
        frame = self.bridge.take_render()
        if frame is None or self._render_progress is None:
            return
        driver, output = frame
        if self.waiting_text is not None:
            self.show_waiting(None)
        if driver is not None:
            self.driver_view.set_image(driver)
            self.driver_view.set_points(None)
        self.output_view.set_image(output)

    def cancel_render(self) -> None:
        if self.session.state is State.RENDERING:
            self.session.cancel_render()  # the renderer stops between frames, keeping what it rendered
            self.cancel_button.setEnabled(False)
            self.render_eta.setText("cancelling...")

    def _render_ended(self) -> None:
        self._render_progress = None
        self.show_waiting(None)
        self._show_render_row(False)
        self.banner.clear("render-running", "render-busy")
        self._update_buttons()

