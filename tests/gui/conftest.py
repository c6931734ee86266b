"""GUI tests run headless; settings go to a temporary file, never the user's."""

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _qt_objects_are_collected_on_the_gui_thread():
    """Python's cyclic garbage collector runs on whichever thread allocates when it triggers; a Qt
    object it frees from a worker thread crashes Qt. During a GUI test it is off, and collection
    runs here, on the main thread, between tests."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()
    gc.collect()


@pytest.fixture
def qsettings(tmp_path):
    from PyQt6.QtCore import QSettings

    return QSettings(str(tmp_path / "retarget.ini"), QSettings.Format.IniFormat)


@pytest.fixture(scope="session", autouse=True)
def _temporary_settings_location(tmp_path_factory):
    """Anything that still builds QSettings("retarget", "retarget") writes under a temporary folder."""
    from PyQt6.QtCore import QSettings

    folder = str(tmp_path_factory.mktemp("qsettings"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
        QSettings.setPath(fmt, QSettings.Scope.SystemScope, folder)


@pytest.fixture
def make_window(qtbot, qsettings, tiny_models_dir, landmarker_path):
    """A real MainWindow on the tiny random models (or `models_dir`), shown, with models loaded, the fast preset
    and `identity` embedded when given."""
    from gui.main_window import MainWindow

    def make(identity=None, models_dir=None):
        window = MainWindow(models=str(models_dir or tiny_models_dir), landmarker_path=landmarker_path,
                            settings=qsettings, probe_cameras=False)
        qtbot.addWidget(window)
        window.panel.set_preset("fast")
        window.panel.steps.setValue(2)  # tiny models: speed over everything
        window.show()
        qtbot.waitUntil(lambda: window.retargeter is not None or bool(window.error_messages), timeout=180000)  # a loaded CI machine
        assert not window.error_messages, window.error_messages
        if identity is not None:
            with qtbot.waitSignal(window.identity_loaded, timeout=60000):
                window.load_identity(identity)
        return window

    return make
