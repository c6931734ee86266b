"""`retarget` with no arguments (or only the app's options) opens the desktop app."""

from __future__ import annotations

from retarget.errors import RetargetError

# Options the desktop app takes too: `retarget --models DIR` opens the window on those models.
APP_OPTIONS = ("--models", "--landmarker", "--device", "--smirk", "--lcm-lora", "--identity", "--driver")


def run_app(argv: list[str] | None = None) -> int:
    try:
        from gui.app import main as app_main
    except ImportError as err:
        raise RetargetError(
            f"the desktop app is not available ({err}); install it with `pip install -e .[gui]` or use `retarget --headless ...`"
        ) from None
    return app_main(argv or [])
