"""The window's live stream, through the session: start, stop (waiting for the frame in progress), frames to the
views, live settings.

The session counts a stream as stopped only once its threads are joined, so no second generate()
can start on the pipeline while one still runs (a restart, a reload, a render).
"""

from __future__ import annotations

from gui.recording import elapsed_text
from gui.workers import error_text, memory_in_use
from retarget.errors import RetargetError
from retarget.session import State


class LiveControls:
    """MainWindow's live stream commands (a mixin over the window's session)."""

    def toggle_stream(self) -> None:
        if self.session.live_running:
            self.stop_stream()
        elif self.session.state is not State.STREAMING:
            self.start_stream()

    def start_stream(self) -> None:
        if self.session.state is State.STREAMING:
            return
        spec = self._driver_spec()
        if self.retargeter is None:
            self.show_error("The models are still loading; start again when they are ready", kind="models-loading")
            return
        if self.context is None:
            self.show_error("Choose an identity photo first (button or drop one on the window)", kind="identity",
                            actions=[("Choose photo...", self._choose_identity)])
            return
        if spec is None:
            self.show_error("No driver: no camera was found; choose a video file", kind="driver",
                            actions=[("Video file...", self._choose_video), ("Refresh cameras", self.refresh_cameras)])
            return
        if self.session.state is State.RENDERING:
            self.show_error("An offline render is running; cancel it or wait for it to finish", kind="render-running",
                            actions=[("Cancel render", self.cancel_render)])
            return
        mapping = self.panel.mapping_settings()
        neutral = self._neutral_raw if mapping.relative else None
        try:
            open_and_start = self.session.begin_live(spec, settings=self.panel.generation_settings(), mapping=mapping,
                                                     neutral_raw=neutral)
        except RetargetError as err:
            self.show_error(str(err), kind="stream")
            return
        self._set_busy(f"Opening {spec}...")
        self._update_buttons()

        def opened(stream):
            if stream is None or stream is not self.session.stream:
                return  # stopped while the driver opened: the session closed what it opened
            self._set_busy(None)
            self._driver_fps = float(getattr(stream.source, "fps", None) or 25.0)
            self.session.set_generation(self.panel.generation_settings())  # changed while the driver opened
            self.banner.clear("stream", "identity", "driver", "models-loading", "render-running")
            self.statusBar().showMessage(f"Live: {spec}", 3000)
            self._update_buttons()
            self.stream_started.emit()

        def failed(err):
            self._set_busy(None)
            self.stop_recording()  # one kept across a loop's restart ends here
            self.show_error(f"Could not start {spec}: {error_text(err)}", kind="stream",
                            actions=[("Retry", self.start_stream), ("Refresh cameras", self.refresh_cameras)])
            self._update_buttons()

        self._run(open_and_start, opened, failed, "open-driver")

    def stop_stream(self, reason: str = "stopped", then=None, keep_recording: bool = False) -> None:
        """Stop on a worker thread (joining the engine can take a frame's time); `then` runs on the UI thread after."""
        session = self.session
        if session.opening:
            session.begin_stop()  # ready at once; what the opening task opens is closed when it is done
            self._set_busy(None)
            self._update_buttons()
            if then:
                then()
            return
        if not session.live_running:
            if then and session.state is not State.STREAMING:
                then()
            return
        stop = session.begin_stop()
        if not keep_recording:  # a looping video keeps recording across its restart
            self.stop_recording()
        self._update_buttons()

        def stopped(_):
            self._show_stats(None)  # no numbers frozen from the last stream
            self._update_buttons()
            self.stream_stopped.emit(reason)
            if then:
                then()

        def failed(err):
            stopped(None)
            self.show_error(f"Stopping the stream: {error_text(err)}", kind="stream")

        self._run(stop, stopped, failed, "stop-stream")

    def _on_frame_ready(self) -> None:
        """UI thread, once per shown frame: hand ready-made QImages to the views; nothing heavy here."""
        frame = self.bridge.take()
        if frame is None:
            return
        self.last_frame = frame
        if frame.driver is not None:
            self.driver_view.set_image(frame.driver)
            self.driver_view.set_points(frame.landmarks if self.landmark_overlay else None)
        self.output_view.set_image(frame.output)
        if self.view_mode == "blend":
            self.output_view.set_underlay(frame.driver)
        self.chart.set_values(frame.blendshapes)
        if not self.snapshot_button.isEnabled() or not self.export_button.isEnabled():
            self._update_buttons()

    def _on_stream_failed(self, err) -> None:
        self.show_error(f"The live stream stopped: {error_text(err)}", kind="stream", actions=[("Restart", self.start_stream)])
        self.stop_stream("failed")

    def _tick(self) -> None:
        """Four times a second: status bar, end-of-stream detection."""
        stream = self.session.stream
        if stream is not None and self.session.live_running:
            self._show_stats(stream.stats)
            if stream.finished.is_set() and (stream.error is None or isinstance(stream.error, StopIteration)):
                broken = getattr(stream.source, "decode_error", None)
                if broken:
                    self.show_error(f"The driver stopped: {broken}", kind="stream")
                    self.stop_stream("failed")
                elif self.loop_check.isChecked() and not getattr(stream.source, "live", False):
                    self.statusBar().showMessage("The driver video ended; playing it again (Loop)", 3000)
                    self.stop_stream("ended", then=self.start_stream, keep_recording=True)
                else:
                    self.statusBar().showMessage("The driver video ended; stream stopped", 8000)
                    self.stop_stream("ended")
        self.memory_label.setText(memory_in_use())
        if self.outputs.recorder is not None:
            name = self.recording_path.name if self.recording_path else ""
            self.rec_label.setText(f"\u25cf REC {elapsed_text(self.outputs.elapsed())}  {name}")
        if self.outputs.vcam_error:
            error, self.outputs.vcam_error = self.outputs.vcam_error, None
            self._set_vcam_checked(False)
            self.show_error(f"The virtual camera stopped: {error}", kind="vcam")

    # ------------------------------------------------------------------ live settings
    def _apply_generation(self) -> None:
        self.session.set_generation(self.panel.generation_settings())  # read every frame; a new object swaps atomically

    def _apply_mapping(self) -> None:
        if not self.session.live_running:
            return
        try:
            # A new mapper only: the stream's landmarker and SMIRK keep running; the next frame uses it.
            self.session.set_mapping(self.panel.mapping_settings(), self._neutral_raw)
        except Exception as err:  # noqa: BLE001 - bad settings or a neutral no longer known: a message, the stream goes on
            self.show_error(error_text(err))  # as any failed task shows it

    def set_neutral(self) -> None:
        if not self.panel.relative.isChecked():
            self.statusBar().showMessage("Set neutral works in relative mode: tick 'Relative' first", 5000)
            return
        frame = self.last_frame
        if self.session.analyzer is None or frame is None or frame.raw_blendshapes is None:
            self.statusBar().showMessage("Set neutral needs a live driver with a face in view", 5000)
            return
        self._neutral_raw = frame.raw_blendshapes
        self.session.set_neutral_from(frame.raw_blendshapes)
        self.statusBar().showMessage("Neutral face set from the current driver frame", 4000)
