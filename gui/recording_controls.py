"""The window's Record, Snapshot, Export CSV and Virtual camera controls.

Recordings and snapshots go to the "Save recordings in..." folder under new names (never
replacing a file); the session writes the frames themselves on the engine's render thread.
"""

from __future__ import annotations

import time
from pathlib import Path

from PyQt6.QtWidgets import QFileDialog

from gui.live_status import no_frames_text
from gui.recording import default_record_dir, elapsed_text
from gui.workers import Task
from retarget.errors import user_message
from retarget.config import VideoOptions
from retarget.session.live_outputs import camera_size
from retarget.outputs import reserve_new_file


class RecordingControls:
    """MainWindow's recording, snapshot, CSV and virtual camera commands (a mixin over the window's state)."""

    def record_dir(self) -> Path:
        return Path(str(self.store.value("files/record_dir", "") or default_record_dir()))

    def choose_record_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save recordings and snapshots in", str(self.record_dir()))
        if folder:
            self.store.setValue("files/record_dir", folder)
            self.statusBar().showMessage(f"Recordings and snapshots go to {folder}", 6000)

    def toggle_recording(self) -> None:
        if self.outputs.recorder is not None:
            self.stop_recording()
        else:
            self.start_recording()

    def start_recording(self, path=None) -> None:
        """Record to a new file in the recordings folder (or to `path`, which must not exist yet)."""
        if not self.session.live_running or self.retargeter is None:
            self.statusBar().showMessage("Recording needs a running stream", 4000)
            self.record_button.setChecked(False)
            return
        try:
            if path is None:
                path = reserve_new_file(self.record_dir(), time.strftime("retarget-%Y%m%d-%H%M%S"), ".mp4")
            else:
                path = Path(path)
                # Exclusive create: an existing file is never replaced, only our own placeholder.
                path.parent.mkdir(parents=True, exist_ok=True)
                path.open("x").close()
        except FileExistsError:
            self.show_error(f"Not recording: {path} already exists (recordings never replace a file)", kind="recording")
            self.record_button.setChecked(False)
            return
        except OSError as err:
            self.show_error(f"Cannot record in {self.record_dir()}: {user_message(err)}", kind="recording",
                            actions=[("Save recordings in...", self.choose_record_dir)])
            self.record_button.setChecked(False)
            return
        try:
            self.session.start_recording(path, video=self.panel.options(VideoOptions))
        except Exception as err:
            path.unlink(missing_ok=True)  # our empty placeholder
            self.show_error(f"Cannot record to {path}: {user_message(err)}", kind="recording")
            self.record_button.setChecked(False)
            return
        self.recording_path = path
        self.banner.clear("recording")
        self.rec_label.setText(f"\u25cf REC 0:00  {path.name}")
        self.rec_label.setToolTip(f"Recording to {path}")
        self.statusBar().showMessage(f"Recording to {path}", 5000)
        self._update_buttons()

    def stop_recording(self) -> None:
        elapsed = self.outputs.elapsed()
        sink, stopped_at = self.session.stop_recording()
        self._update_buttons()
        if sink is None:
            return
        if sink.frames_written == 0:  # said at once, and no file: nothing to encode
            self._discard_recording(sink)
            self.rec_label.setText("")
            self.show_error(no_frames_text(elapsed, sink.path), kind="recording")
            return
        self.rec_label.setText(f"saving recording ({sink.frames_written} frames)...")

        def close():
            sink.close(end_time=stopped_at)  # flushes the encoder: off the UI thread
            check_playable(sink.path)  # never a success without a file that plays
            return sink

        def saved(sink):
            self.recorded_frames = sink.frames_written
            self.rec_label.setText("")
            self.show_notice(f"Recorded {sink.frames_written} frames ({elapsed_text(sink.seconds)}) to {sink.path}",
                             kind="saved")
            self.recording_saved.emit(str(sink.path), sink.frames_written)

        def failed(err):
            self._discard_recording(sink)
            self.rec_label.setText("")
            self.show_error(f"Recording to {sink.path} failed: {user_message(err)}", kind="recording")

        self._run(close, saved, failed, "recording")

    def _finish_recording_on_exit(self, sink, stopped_at: float) -> None:
        """Closing the window: save what was recorded; a recording with no frame leaves no file at all."""
        if sink.frames_written == 0:
            self._discard_recording(sink)
            return
        try:
            sink.close(end_time=stopped_at)
        except Exception as err:  # closing anyway: say so on stderr, never hang or crash the exit
            import sys

            print(f"retarget: recording to {sink.path} failed: {user_message(err)}", file=sys.stderr)

    @staticmethod
    def _discard_recording(sink) -> None:
        sink.abort()
        if sink.path.is_file() and sink.path.stat().st_size == 0:
            sink.path.unlink()  # the empty placeholder we reserved, nothing else

    def take_snapshot(self) -> Path | None:
        """The current output as a new PNG in the recordings folder (never replacing a file)."""
        if self.last_frame is None:
            self.statusBar().showMessage("No output frame yet", 4000)
            return None
        try:
            path = reserve_new_file(self.record_dir(), time.strftime("retarget-snapshot-%Y%m%d-%H%M%S"), ".png")
        except OSError as err:
            self.show_error(f"Cannot save a snapshot in {self.record_dir()}: {user_message(err)}", kind="snapshot",
                            actions=[("Save recordings in...", self.choose_record_dir)])
            return None
        return path if self._save_output(path) else None

    def snapshot(self, path) -> bool:
        """The current output to `path` (.png), which must not exist yet."""
        if self.last_frame is None:
            self.statusBar().showMessage("No output frame yet", 4000)
            return False
        path = Path(path).with_suffix(".png") if Path(path).suffix.lower() != ".png" else Path(path)
        try:
            path.open("x").close()
        except FileExistsError:
            self.show_error(f"Not saved: {path} already exists (snapshots never replace a file)", kind="snapshot")
            return False
        except OSError as err:
            self.show_error(f"Cannot write {path}: {user_message(err)}", kind="snapshot")
            return False
        return self._save_output(path)

    def _save_output(self, path: Path) -> bool:
        from retarget.outputs import write_image

        try:  # through write_image: marked as AI-generated like every output (retarget.provenance)
            write_image(path, self.last_frame.output_rgb)
        except Exception as err:
            path.unlink(missing_ok=True)  # our empty placeholder
            self.show_error(f"Cannot write {path}: {user_message(err)}", kind="snapshot")
            return False
        self.show_notice(f"Saved snapshot {path}", kind="saved")
        return True

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export blendshapes", str(self.record_dir() / "blendshapes.csv"), "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path) -> Task | None:
        rows = list(self.outputs.rows)
        if not rows:
            self.statusBar().showMessage("No frames in this run yet", 4000)
            return None
        path = Path(path)

        def write():
            from retarget.media.blendshape_csv import BlendshapeCsvWriter

            with BlendshapeCsvWriter(path) as writer:  # written under a temporary name, renamed when complete
                for t, values in rows:
                    writer.write(t, values)
            return len(rows)

        return self._run(write, lambda n: self.statusBar().showMessage(f"Wrote {n} rows to {path}", 6000), name="csv")

    def _set_vcam_checked(self, on: bool) -> None:
        self.vcam_check.blockSignals(True)
        self.vcam_check.setChecked(on)
        self.vcam_check.blockSignals(False)
        self._vcam_wanted = on

    def _toggle_vcam(self, on: bool) -> None:
        self._vcam_wanted = on
        if not on:
            cam = self.outputs.set_vcam(None)
            if cam is not None:
                cam.close()
            return
        if self.retargeter is None:
            # Ticked while the models load: it stays ticked and opens once they are in.
            self.statusBar().showMessage("The virtual camera starts when the models are ready", 5000)
            return
        self._open_vcam()

    def _open_vcam(self) -> None:
        # The output frame's size (the whole photo, or the crop): the camera follows the view.
        (width, height), fps, backend = camera_size(self.session.output_size()), max(self._driver_fps, 30.0), self.vcam_backend

        def open_cam():
            import pyvirtualcam

            return pyvirtualcam.Camera(width=width, height=height, fps=fps, backend=backend)

        def opened(cam):
            if not self._vcam_wanted:
                cam.close()  # unticked while it opened
                return
            old = self.outputs.set_vcam(cam)
            if old is not None:
                old.close()
            self.banner.clear("vcam")
            self.statusBar().showMessage(f"Virtual camera: {cam.device}", 5000)

        def failed(err):
            self._set_vcam_checked(False)
            self.show_error(f"No virtual camera: {user_message(err)}. On Linux load v4l2loopback "
                            "(sudo modprobe v4l2loopback devices=1); on Windows/macOS install OBS and start its Virtual Camera once",
                            kind="vcam", actions=[("Try again", lambda: self.vcam_check.setChecked(True))])

        self._run(open_cam, opened, failed, "vcam")


def check_playable(path: Path) -> None:
    """Raise unless `path` is a video whose first frame decodes (PyAV)."""
    import av

    try:
        with av.open(str(path)) as container:
            next(container.decode(video=0))
    except (av.FFmpegError, StopIteration, OSError) as err:
        raise RuntimeError(f"{path} was written but does not play ({user_message(err) if str(err) else 'no frame'}); "
                           "it is kept for inspection") from err
