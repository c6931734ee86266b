"""The window's live stream, through the session: start, stop (waiting for the frame in progress), frames to the
views, live settings.

The session counts a stream as stopped only once its threads are joined, so no second generate()
can start on the pipeline while one still runs (a restart, a reload, a render).
"""

from __future__ import annotations

from gui.live_status import (
    OUTPUT_PLACEHOLDER, SLOW_LIVE_FPS, STATE_TEXT, first_frame_text, recording_text, slow_device_text,
    stream_end_text,
)
from gui.workers import memory_in_use
from retarget.errors import RetargetError, user_message
from retarget.media.frame_source import DEFAULT_FPS
from retarget.session.states import State


class LiveControls:
    """MainWindow's live stream commands (a mixin over the window's session)."""

    def toggle_stream(self) -> None:
        if self.session.live_running:
            self.stop_stream()
        elif self.session.state is not State.STREAMING:
            self.start_stream()

    def start_stream(self, keep_panes: bool = False) -> None:
        """keep_panes: a Loop restart keeps the last frames on screen until the new ones come."""
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
        if not keep_panes:  # nothing from the last stream or a still: this stream's frames, from the first
            self.driver_view.clear()
            self.output_view.clear()
            self.last_driven = None
            self.show_waiting(f"Opening {spec}\u2026")
        self._update_buttons()

        def opened(stream):
            if stream is None or stream is not self.session.stream:
                return  # stopped while the driver opened: the session closed what it opened
            self._set_busy(None)
            if self.output_view.image() is None:
                self.show_waiting(first_frame_text(0))
            self._driver_fps = float(stream.source.fps or DEFAULT_FPS)
            self.session.set_generation(self.panel.generation_settings())  # changed while the driver opened
            self.banner.clear("stream", "identity", "driver", "models-loading", "render-running")
            self.notice.clear("stream-end")
            self.statusBar().showMessage(f"Live: {spec}", 3000)
            self._update_buttons()
            self.stream_started.emit()

        def failed(err):
            self._set_busy(None)
            self.show_waiting(None)
            self.stop_recording()  # one kept across a loop's restart ends here
            self.show_error(f"Could not start {spec}: {user_message(err)}", kind="stream",
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
            self.show_waiting(None)
            self._show_stats(None)  # no numbers frozen from the last stream
            self._update_buttons()
            self.stream_stopped.emit(reason)
            if then:
                then()

        def failed(err):
            stopped(None)
            self.show_error(f"Stopping the stream: {user_message(err)}", kind="stream")

        self._run(stop, stopped, failed, "stop-stream")

    def _on_driver_ready(self) -> None:
        """UI thread, once per perceived driver frame (the driver's own rate, from the first frame): driver pane + chart."""
        frame = self.bridge.take_driver()
        if frame is None or not self.session.live_running:
            return
        self.last_driven = frame
        if frame.driver is not None:
            self.driver_view.set_image(frame.driver)
            self.driver_view.set_points(frame.landmarks if self.landmark_overlay else None)
        self.chart.set_values(frame.blendshapes)

    def _on_frame_ready(self) -> None:
        """UI thread, once per shown frame: hand ready-made QImages to the views; nothing heavy here."""
        frame = self.bridge.take()
        if frame is None:
            return
        self.last_frame = frame
        if self.waiting_text is not None:
            self.show_waiting(None)
        self.output_view.set_image(frame.output)
        if self.view_mode == "blend":
            self.output_view.set_underlay(frame.driver)  # the frame this output was made from
        self._check_live_speed(frame.stats)
        if not self.snapshot_button.isEnabled() or not self.export_button.isEnabled():
            self._update_buttons()

    # ------------------------------------------------------------------ what the user is told
    def show_waiting(self, text: str | None) -> None:
        """What the output pane says while it has no frame to show ("Generating the first frame… 12 s"); None: clear."""
        self.waiting_text = text
        self.output_view.placeholder = text or OUTPUT_PLACEHOLDER
        self.output_view.update()

    def _on_state_changed(self, old: State, new: State) -> None:
        self._update_buttons()
        note, self._state_note = self._state_note, None  # why, when the window knows (a video that ended)
        text = f"{STATE_TEXT[old]} \u2192 {STATE_TEXT[new]}" + (f": {note}" if note else "")
        self.statusBar().showMessage(text, 0 if note else 6000)  # every change, visible
        if new is State.LOADING:
            self.show_waiting(STATE_TEXT[new])
        elif old is State.LOADING and self.waiting_text == STATE_TEXT[old]:
            self.show_waiting(None)

    def _fastest_preset(self) -> str:
        return "lcm" if self.panel.preset.findData("lcm") >= 0 else "fast"

    def _check_live_speed(self, stats) -> None:
        """Once per window: on a CPU, or when the first frames come at under 1 fps, say plainly what to expect."""
        if self._slow_live_told or stats is None or stats.rendered < 2:
            return
        device = str(self.device) if self.device is not None else "cpu"
        if device != "cpu" and stats.output_fps >= SLOW_LIVE_FPS:
            return
        self._slow_live_told = True
        fastest = self._fastest_preset()
        actions = [("Render video...", lambda: self.stop_stream(then=self._choose_render))]  # a render needs the stream stopped
        if self.panel.preset.currentData() != fastest:
            actions.insert(0, (f"Use '{fastest}'", lambda: self.panel.set_preset(fastest)))
        self.show_notice(slow_device_text(device, stats.output_fps, fastest), kind="slow-live", actions=actions)

    def _video_ended(self, stream) -> None:
        text = stream_end_text(stream.stats.captured)
        self._state_note = text
        self.stop_stream("ended")

        def loop():
            self.loop_check.setChecked(True)
            self.start_stream()

        self.show_notice(text, kind="stream-end", actions=[("Start again", self.start_stream), ("Loop", loop)])

    def _on_stream_failed(self, err) -> None:
        self.show_error(f"The live stream stopped: {user_message(err)}", kind="stream", actions=[("Restart", self.start_stream)])
        self.stop_stream("failed")

    def _tick(self) -> None:
        """Four times a second: status bar, end-of-stream detection."""
        stream = self.session.stream
        if stream is not None and self.session.live_running:
            self._show_stats(stream.stats)
            if stream.finished.is_set() and (stream.error is None or isinstance(stream.error, StopIteration)):
                broken = stream.source.decode_error
                if broken:
                    self.show_error(f"The driver stopped: {broken}", kind="stream")
                    self.stop_stream("failed")
                elif self.loop_check.isChecked() and not stream.source.live:
                    self.statusBar().showMessage("The driver video ended; playing it again (Loop)", 3000)
                    self.stop_stream("ended", then=lambda: self.start_stream(keep_panes=True), keep_recording=True)
                else:
                    self._video_ended(stream)
            elif stream.stats.rendered == 0 and self.output_view.image() is None:
                self.show_waiting(first_frame_text(stream.stats.waiting_s))
        self.keep_previews_large()
        self.memory_label.setText(memory_in_use())
        if self.outputs.recorder is not None:
            name = self.recording_path.name if self.recording_path else ""
            text, tip = recording_text(self.outputs.elapsed(), self.outputs.recorded_frames(),
                                       self.outputs.since_last_recorded(), name)
            self.rec_label.setText(text)
            self.rec_label.setToolTip(tip or f"Recording to {self.recording_path}")
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
            self.show_error(user_message(err))  # as any failed task shows it

    def set_neutral(self) -> None:
        if not self.panel.relative.isChecked():
            self.statusBar().showMessage("Set neutral works in relative mode: tick 'Relative' first", 5000)
            return
        frame = self.last_driven or self.last_frame  # the driver frame on screen
        if self.session.analyzer is None or frame is None or frame.raw_blendshapes is None:
            self.statusBar().showMessage("Set neutral needs a live driver with a face in view", 5000)
            return
        self._neutral_raw = frame.raw_blendshapes
        self.session.set_neutral_from(frame.raw_blendshapes)
        self.statusBar().showMessage("Neutral face set from the current driver frame", 4000)
