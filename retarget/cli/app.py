"""`retarget` with no arguments (or only the app's options) opens the desktop app."""

from __future__ import annotations

from retarget.errors import RetargetError

# Options the desktop app takes too: `retarget --models DIR` opens the window on those models.
APP_OPTIONS = ("--models", "--landmarker", "--device", "--smirk", "--lcm-lora", "--identity", "--driver")


def check_qt_platform() -> None:
    """Qt aborts the process with a long message when its X11 plugin lacks a system library: say it in one line first."""
    from retarget.doctor import missing_qt_libraries, qt_install_line, uses_xcb

    if uses_xcb():
        missing = missing_qt_libraries()
        if missing:
            raise RetargetError(f"the desktop app cannot open a window: Qt's X11 plugin needs {', '.join(missing)}; install them "
                                f"with `{qt_install_line(missing)}` (or use `retarget --headless ...`)")


def run_app(argv: list[str] | None = None) -> int:
    check_qt_platform()
    try:
        from gui.app import main as app_main
    except ImportError as err:
        raise RetargetError(
            f"the desktop app is not available ({err}); install it with `pip install -e .[gui]` or use `retarget --headless ...`"
        ) from None
    return app_main(argv or [])
