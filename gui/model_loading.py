"""Loading the models in the window, and the fixes a missing file gets: choose it, download it, retry.

Loading runs in one step per file kind (model set, MediaPipe landmarker, SMIRK), so a failure
knows which file is missing and the banner offers the buttons that fix exactly that.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QFileDialog

from gui.workers import error_text


class MissingFile(Exception):
    """A load failure that a file or folder fixes: kind is "models", "landmarker" or "smirk"."""

    def __init__(self, kind: str, error: BaseException):
        super().__init__(str(error))
        self.kind, self.error = kind, error


class ModelLoading:
    """MainWindow's model loading (a mixin: it uses the window's state, banners and tasks)."""

    def load_models(self) -> None:
        """Load the generator and face models on a worker thread (minutes on first use of `hub`)."""
        device_name = self.panel.device_name()
        spec, landmarker, smirk, lcm = self.models_spec, self.landmarker_path, self.smirk_path, self.lcm_lora
        self._set_busy(f"Loading models ({spec}) on {device_name}...")
        self.retargeter_old, self.retargeter = self.retargeter, None
        self._update_buttons()

        def load():
            from retarget.cli.common import quiet_libraries

            quiet_libraries()
            from retarget.assets import resolve_models
            from retarget.errors import MissingWeightsError
            from retarget.face.landmarker import find_landmarker_model
            from retarget.pipeline import pick_device
            from retarget.retargeter import Retargeter

            # One step per file kind, so a failure says which file is missing and the banner offers its fix.
            # `hub` is read from the cache only: a first run downloads in the dialog, with progress and Cancel.
            try:
                files = resolve_models(spec, local_files_only=True if spec == "hub" else None, progress=lambda line: None)
            except MissingWeightsError as err:
                raise MissingFile("hub" if spec == "hub" else "models", err) from None
            try:
                landmarker_file = find_landmarker_model(landmarker or files.landmarker)
            except MissingWeightsError as err:
                raise MissingFile("landmarker", err) from None
            device = pick_device(device_name)
            try:
                retargeter = Retargeter(files, device=device, landmarker_path=landmarker_file, smirk_path=smirk)
            except MissingWeightsError as err:
                raise MissingFile("smirk" if "SMIRK" in str(err) else "models", err) from None
            if lcm:
                retargeter.pipeline.load_lcm_lora(lcm)
            return retargeter, files

        self._run(load, self._models_ready, self._models_failed, "load-models")

    def _models_ready(self, result) -> None:
        old = getattr(self, "retargeter_old", None)
        if old is not None:
            old.close()
        self.retargeter, files = result
        self.models_description = files.description
        self.device = self.retargeter.pipeline.device
        self.device_label.setText(f"device: {self.device}")
        self.panel.set_lcm_available(bool(getattr(self.retargeter.pipeline, "has_lcm", False)))
        self.panel.set_control_support(self.retargeter.control_support())
        self._set_busy(None)
        self.banner.clear("models", "landmarker", "smirk", "download")
        self.statusBar().showMessage(f"Models ready: {files.description}", 5000)
        self.models_loaded.emit()
        identity = self._pending_identity or self.identity_path
        self._pending_identity = None
        self.context = None  # an identity embedded on another device or model set must be redone
        restart, self._restart_after_load = self._restart_after_load, False
        if identity is not None:
            self.load_identity(identity, restart=restart)
        if self._vcam_wanted:
            self._open_vcam()
        self._update_buttons()

    def _models_failed(self, err) -> None:
        self._set_busy(None)
        self._restart_after_load = False
        kind = err.kind if isinstance(err, MissingFile) else None
        if kind == "hub" and not self._hub_download_offered:
            self._hub_download_offered = True  # once per load: a failed or cancelled download ends in the banner
            self.download_hub_models()
            return
        text = f"Could not load the models: {error_text(err.error if isinstance(err, MissingFile) else err)}"
        retry = ("Retry", self.load_models)
        actions = {
            "models": [("Choose models folder...", self.choose_models_folder), ("Download...", self.download_models), retry],
            "hub": [("Download", self.download_hub_models), ("Choose models folder...", self.choose_models_folder), retry],
            "landmarker": [("Choose file...", self.choose_landmarker), ("Download", self.download_landmarker), retry],
            "smirk": [("Choose file...", self.choose_smirk), retry],
        }.get(kind, [retry])
        self.show_error(text, kind=kind or "load", actions=actions)
        self._update_buttons()

    def choose_models_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder (from `retarget download --to DIR`)",
                                                  str(self.store.value("files/models_dir", "")))
        if folder:
            self.set_models(folder)

    def set_models(self, spec: str) -> None:
        """Use another model set (a folder, hub, random:tiny) and load it."""
        self.models_spec = str(spec)
        self._hub_download_offered = False
        self.store.setValue("files/models_dir", str(spec))
        self._reload_models()

    def choose_landmarker(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "MediaPipe face landmarker", "", "MediaPipe task (*.task);;All files (*)")
        if path:
            self.landmarker_path = Path(path)
            self._reload_models()

    def choose_smirk(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SMIRK encoder (SMIRK_em1.pt)", "", "PyTorch checkpoint (*.pt);;All files (*)")
        if path:
            self.smirk_path = Path(path)
            self._reload_models()

    def _reload_models(self) -> None:
        if self.stream_state != "idle":
            self._restart_after_load = self.stream_state == "running"
            self.stop_stream(then=self.load_models)
        else:
            self.load_models()

    def download_models(self, to: str | Path | None = None) -> None:
        """`retarget download` in a dialog (per-file progress, Cancel); loads the folder when it is complete."""
        from gui.downloads import DownloadDialog, models_download
        from retarget.downloads import everything

        if not isinstance(to, (str, Path)):  # None, or the `checked` flag of a button or menu item
            to = QFileDialog.getExistingDirectory(self, "Download the models into this folder", str(Path.home()))
            if not to:
                return
        to = Path(to)
        dialog = DownloadDialog(f"Downloading the models into {to}", models_download(to),
                                total_files=len(everything()), parent=self)
        dialog.finished_with.connect(lambda outcome, result: self._download_ended(outcome, result, lambda: self.set_models(to)))
        self.download_dialog = dialog
        dialog.show()
        dialog.start()

    def download_hub_models(self, *_) -> None:
        """First run of `hub`: the published files into the Hugging Face cache in a dialog (per-file bytes,
        Cancel; finished files are kept), then the models load from there."""
        from gui.downloads import DownloadDialog, hub_cache_download
        from retarget.assets import ARC2FACE_FILES, BASE_FILES
        from retarget.downloads import extras

        self.banner.clear("hub", "load")
        dialog = DownloadDialog("Downloading the published models into the Hugging Face cache (first run)", hub_cache_download(),
                                total_files=len(ARC2FACE_FILES) + len(BASE_FILES) + len(extras()), parent=self)
        dialog.finished_with.connect(lambda outcome, result: self._download_ended(
            outcome, result, self.load_models, retry=self.download_hub_models))
        self.download_dialog = dialog
        dialog.show()
        dialog.start()

    def download_landmarker(self) -> None:
        from gui.downloads import DownloadDialog

        def fetch(counter):
            from retarget.face.landmarker import find_landmarker_model

            counter.begin("face_landmarker.task (MediaPipe)", None)
            return find_landmarker_model(download=True)

        def use(path):
            self.landmarker_path = Path(path)
            self._reload_models()

        dialog = DownloadDialog("Downloading the MediaPipe face landmarker", fetch, parent=self)
        dialog.finished_with.connect(lambda outcome, result: self._download_ended(outcome, result, lambda: use(result)))
        self.download_dialog = dialog
        dialog.show()
        dialog.start()

    def _download_ended(self, outcome: str, result, then, retry=None) -> None:
        if outcome == "done":
            self.banner.clear("download")
            then()
        elif outcome == "cancelled":
            self.show_notice(str(result), kind="download")
        else:
            self.show_error(f"Download failed: {result}", kind="download",
                            actions=[("Retry download", retry or self.download_models)])

    def _device_changed(self, name: str) -> None:
        if self.retargeter is None:
            return  # loading now; it reads the combo when it starts, and a reload follows below if it differs
        self._reload_models()  # a running stream restarts on the new device once the models are in

