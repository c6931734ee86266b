"""Loading the models in the window, and the fixes a missing file gets: choose it, download it, retry.

The session loads in one step per file kind (model set, MediaPipe landmarker, SMIRK), so a failure
(MissingModelFile) knows which file is missing and the banner offers the buttons that fix exactly that.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QFileDialog

from retarget.errors import MissingModelFile, RetargetError, quiet_libraries, user_message
from retarget.config.models import ModelOptions
from retarget.session.states import State


class ModelLoading:
    """MainWindow's model loading (a mixin: it uses the window's session, banners and tasks)."""

    def load_models(self) -> None:
        """Load the generator and face models through the session, on a worker thread (minutes on first use of `hub`)."""
        options = self.model_options()
        device_name, spec = options.device, options.models
        try:
            # `hub` is read from the cache only: a first run downloads in the dialog, with progress and Cancel.
            work = self.session.begin_load(options, local_files_only=True if spec == "hub" else None,
                                           expression_source=self.panel.mapping_settings().expression_source)
        except RetargetError as err:  # a render or a stream holds the models
            self.show_error(str(err), kind="load")
            return
        self._set_busy(f"Loading models ({spec}) on {device_name}...")
        self._update_buttons()

        def load():
            quiet_libraries()
            return work()

        self._run(load, self._models_ready, self._models_failed, "load-models")

    def model_options(self) -> ModelOptions:
        """The models to load as one ModelOptions: the form's model knobs (Run on) and the files this window holds."""
        return self.panel.options(ModelOptions, models=self.models_spec, device=self.panel.device_name(),
                                  landmarker=self.landmarker_path, smirk=self.smirk_path, lcm_lora=self.lcm_lora)

    def _models_ready(self, retargeter) -> None:
        files = self.session.files
        self.device_label.setText(f"device: {self.device}")
        lcm = self.session.has_lcm
        self.panel.set_lcm_available(lcm)
        self._apply_live_default(lcm)
        self.panel.set_control_support(retargeter.control_support_for(self.panel.mapping_settings().expression_source))
        self._set_busy(None)
        self.banner.clear("models", "landmarker", "smirk", "download")
        self.statusBar().showMessage(f"Models ready: {files.description}", 5000)
        self.models_loaded.emit()
        identity = self._pending_identity or self.identity_path
        self._pending_identity = None  # the session dropped the old identity: it is embedded again by these models
        restart, self._restart_after_load = self._restart_after_load, False
        if identity is not None:
            self.load_identity(identity, restart=restart)
        if self._vcam_wanted:
            self._open_vcam()
        self._update_buttons()

    def _apply_live_default(self, lcm: bool) -> None:
        """A saved LCM preset once the LoRA is there to offer it; else, for a user who has not chosen a preset, the
        device's live default (retarget.config.live_default: on a GPU, the fastest that keeps the paper's look)."""
        from retarget.config.live_default import live_default_preset

        if self.panel.preset_chosen:
            if lcm and self.panel.saved_preset == "lcm" and self.panel.preset.currentData() != "lcm":
                self.panel.set_preset("lcm")  # not offered when the settings were restored, before the models
            return
        preset = live_default_preset(self.device, lcm)
        if preset is None:
            if self.panel.preset_automatic:  # now on a CPU: back to the paper's settings
                self.panel.set_preset("quality")
                self.panel.preset_automatic = False
            return
        changed = self.panel.preset.currentData() != preset
        self.panel.set_automatic_preset(preset)
        if changed:
            self.statusBar().showMessage(f"Live preset '{preset}' on {self.device}: the fastest that keeps the paper's "
                                         f"look (Render video keeps the paper's settings)", 8000)

    def _models_failed(self, err) -> None:
        self._set_busy(None)
        self._restart_after_load = False
        kind = err.kind if isinstance(err, MissingModelFile) else None
        if kind == "hub" and not self._hub_download_offered:
            self._hub_download_offered = True  # once per load: a failed or cancelled download ends in the banner
            self.download_hub_models()
            return
        text = f"Could not load the models: {user_message(err)}"
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
        if self.session.state is State.STREAMING:
            self._restart_after_load = self.session.live_running
            self.stop_stream(then=self.load_models)
        else:
            self.load_models()

    def download_models(self, to: str | Path | None = None) -> None:
        """`retarget download` in a dialog (per-file progress, Cancel); loads the folder when it is complete."""
        from gui.downloads import DownloadDialog, models_download
        from retarget.weights.downloads import everything

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
        from retarget.weights.assets import ARC2FACE_FILES, BASE_FILES
        from retarget.weights.downloads import extras

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

