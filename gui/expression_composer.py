"""The window's "Compose expression" dock: the slider panel, and rendering its stills and coefficient thumbnails.

Stills and thumbnails go through Retargeter.render (RetargetPipeline.generate, the path of every
still and live frame) on a Task thread, like all slow work of the window. They are refused while a
live stream or an offline render holds the pipeline, so it never serves two jobs at once.
Thumbnails are cached per identity, coefficient and generation settings.
"""

from __future__ import annotations

import weakref
from dataclasses import replace
from pathlib import Path

from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QKeySequence
from PyQt6.QtWidgets import QDockWidget, QFileDialog, QMenu

from gui.expression_panel import THUMBNAIL_K, ExpressionPanel
from gui.views import rgb_to_qimage
from retarget.errors import user_message
from retarget.names.kinds import IMAGE_SUFFIXES, file_patterns
from retarget.session.states import State


class ExpressionComposer(QObject):
    still_rendered = pyqtSignal(object)  # the RGB image
    thumbnails_ready = pyqtSignal(int)  # the coefficient's index
    photo_taken = pyqtSignal(str)  # the driver photo whose values the sliders took

    def __init__(self, window, presets_dir: Path | None = None):
        super().__init__(window)
        self.window = window
        self.panel = ExpressionPanel(presets_dir)
        self.dock = QDockWidget("Compose expression", window)
        self.dock.setObjectName("compose_expression")
        self.dock.setWidget(self.panel)
        self.dock.setMinimumWidth(360)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self.action = self.dock.toggleViewAction()
        self.action.setText("Compose expression (sliders)")
        self.action.setShortcut(QKeySequence("Ctrl+E"))
        self._add_to_view_menu(window)
        self.busy = False
        self.last_still = None
        self._thumbs: dict[tuple, tuple] = {}
        self._thumb_owner = None  # a weak reference to the identity the cached thumbnails show
        window.models_loaded.connect(self._models_loaded)
        self.panel.render_requested.connect(self.render_still)
        self.panel.photo_requested.connect(self._choose_photo)
        self.panel.thumbnails_requested.connect(self.render_thumbnails)
        self.panel.save_requested.connect(self._choose_still_file)
        self.panel.message.connect(lambda text: window.statusBar().showMessage(text, 8000))
        self.panel.calibrate_requested.connect(lambda: window.bridge_controls.open())
        if window.retargeter is not None:
            self._models_loaded()

    def _add_to_view_menu(self, window) -> None:
        actions = getattr(window, "actions_by_name", {})
        settings = actions.get("settings")
        for menu in window.menuBar().findChildren(QMenu):
            if settings is not None and settings in menu.actions():
                menu.insertAction(settings, self.action)
                break
        else:
            window.addAction(self.action)  # the shortcut works even without a View menu
        actions["compose"] = self.action

    def _models_loaded(self) -> None:
        session = self.window.session
        self.panel.set_kind(session.adapter_kind, session.bridge)

    # ------------------------------------------------------------------ guards
    def _ready(self, need_identity: bool = True, what: str = "rendering a still") -> bool:
        w = self.window
        if w.retargeter is None:
            w.show_error("The models are still loading; compose again when they are ready", kind="compose")
        elif need_identity and w.context is None:
            w.show_error("Choose an identity photo first (button or drop one on the window)", kind="compose",
                         actions=[("Choose photo...", w._choose_identity)])
        elif w.session.state is not State.READY:
            w.show_error(f"Stop the live stream (or the running render) before {what}", kind="compose")
        elif self.busy:
            w.statusBar().showMessage("The compose panel is still working on its last request; wait for it", 4000)
        else:
            return True
        return False

    def _start(self, fn, done, what: str) -> None:
        self.busy = True
        self.panel.render_button.setEnabled(False)

        def finished(result):
            self._idle()
            self.window.banner.clear("compose")
            done(result)

        def failed(err):
            self._idle()
            self.window.show_error(f"{what}: {user_message(err)}", kind="compose")

        self.window._run(fn, finished, failed, "compose")

    def _idle(self) -> None:
        self.busy = False
        self.panel.render_button.setEnabled(self.panel.space is not None)

    # ------------------------------------------------------------------ still
    def render_still(self) -> None:
        if not self._ready():
            return
        w = self.window
        session, settings = w.session, w.panel.generation_settings()
        vector = self.panel.vector()

        def render():  # through the session: its state says RENDERING, so no stream or job starts meanwhile
            image = session.render_expressions(vector[None], settings=settings)[0]
            return image, rgb_to_qimage(image)

        def done(result):
            self.last_still, qimage = result
            w.output_view.set_image(qimage)
            # No stale state: the output shown has no driver frame, so the driver pane clears, and the chart
            # shows this expression's blendshapes, or nothing when it is not made of them.
            w.driver_view.clear()
            w.driver_view.set_points(None)
            w.last_driven = None
            if self.panel.space.kind == "blendshapes52":  # the chart shows 52 blendshapes: these ones
                w.chart.set_values(self.panel.space.full_vector(self.panel.values()))
            else:
                w.chart.set_values([0.0] * len(w.chart.names))
            self.panel.save_button.setEnabled(True)
            w.statusBar().showMessage("Rendered the composed expression (Save still... keeps it)", 6000)
            self.still_rendered.emit(self.last_still)

        self._start(render, done, "Render still")

    def _choose_still_file(self) -> None:
        if self.last_still is None:
            return
        # The dialog asks before replacing an existing file.
        start = str(self.window.record_dir() / "expression.png")  # where snapshots go too
        path, _ = QFileDialog.getSaveFileName(self.window, "Save still", start, "PNG image (*.png)")
        if path:
            from retarget.outputs import write_image

            try:
                write_image(path, self.last_still)
            except OSError as err:
                self.window.show_error(f"Still not saved: {user_message(err)}", kind="compose")
                return
            self.window.statusBar().showMessage(f"Saved {path}", 6000)

    # ------------------------------------------------------------------ thumbnails
    def render_thumbnails(self, index: int) -> None:
        """The identity at -k and +k of one FLAME coefficient, everything else neutral (cached)."""
        w = self.window
        if w.retargeter is None or w.context is None:
            self._ready()
            return
        context, settings = w.context, w.panel.generation_settings()
        if self._thumb_owner is None or self._thumb_owner() is not context:
            self._thumbs.clear()
            self._thumb_owner = weakref.ref(context)
        key = (index, THUMBNAIL_K, repr(settings))
        if key in self._thumbs:
            self.panel.show_thumbnails(index, *self._thumbs[key])
            self.thumbnails_ready.emit(index)
            return
        if not self._ready():
            return
        space, kind, session = self.panel.space, self.panel.adapter_kind, w.session
        name = space.controls[index].name
        vectors = [space.vector_for(kind, {name: value}) for value in (-THUMBNAIL_K, THUMBNAIL_K)]

        def render():
            import numpy as np

            images = session.render_expressions(np.stack(vectors), settings=settings)
            return tuple(rgb_to_qimage(image) for image in images)

        def done(images):
            if self._thumb_owner is not None and self._thumb_owner() is context:
                self._thumbs[key] = images
            self.panel.show_thumbnails(index, *images)
            self.thumbnails_ready.emit(index)

        self.panel.thumb_caption.setText(f"Rendering {name} at \u00b1{THUMBNAIL_K:g}...")
        self.panel.thumbs_box.setVisible(True)
        self._start(render, done, f"Thumbnails of {name}")

    # ------------------------------------------------------------------ driver photo
    def _choose_photo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Driver photo", "", f"Images ({file_patterns(IMAGE_SUFFIXES)})")
        if path:
            self.start_from_photo(path)

    def start_from_photo(self, path) -> None:
        """Set every slider to the values this photo drives (the settings panel's gains; relative mode needs a video)."""
        if not self._ready(need_identity=False, what="taking a driver photo's values"):
            return
        w = self.window
        path = Path(path)
        retargeter = w.retargeter
        neutral = w.context.blendshapes if w.context is not None else None
        mapping = w.panel.mapping_settings()
        relative_dropped = mapping.relative
        mapping = replace(mapping, relative=False)  # a single photo has no neutral face to be relative to
        bridged = self.panel.bridged  # the sliders are blendshapes: the photo's, mapped (the bridge is applied at render)
        if bridged:
            mapping = replace(mapping, expression_source="bridge")

        def analyse():
            from retarget.face.image_io import load_image

            return retargeter.expression_from_image(load_image(path), source=path.name, mapping=mapping,
                                                    identity_neutral=neutral, blendshapes=bridged)

        def done(vector):
            outside = self.panel.take_adapter_vector(vector)
            w.statusBar().showMessage(f"Sliders set from {path.name}" + (
                f"; {outside} values lie outside the sliders' ranges (kept exactly; a preset needs them in range)"
                if outside else "") + ("; relative mode is not used for a single photo" if relative_dropped else ""), 8000)
            self.photo_taken.emit(str(path))

        self._start(analyse, done, f"Driver photo {path.name}")


def add_expression_composer(window, presets_dir: Path | None = None) -> ExpressionComposer:
    """The dock, hidden until View > Compose expression (Ctrl+E)."""
    return ExpressionComposer(window, presets_dir)
