"""`retarget`, the console command: the composition root above the library (retarget/) and the app (gui/).

- no arguments, or only the app's options (gui.app.parser: the model knobs the app takes, plus --identity and
  --driver) -> the desktop app, its options parsed once here; a machine that cannot show it (no PyQt6, Qt's X11
  plugin missing a system library) is refused in one line;
- `--headless ...`, a subcommand (`retarget extract ...`), `--help` -> retarget.cli, exactly as
  `python -m retarget ...` runs them;
- anything else (render options without --headless) -> one line naming the options that need --headless.

retarget/ imports neither this package nor gui/ (tests/test_architecture.py): only this layer knows both.
"""

from __future__ import annotations

import sys

from retarget.errors import RetargetError, run_command

HELP_FLAGS = ("-h", "--help")


def wants_cli(argv: list[str]) -> bool:
    """A headless render, a subcommand or --help: retarget.cli's to run."""
    from retarget.cli import SUBCOMMANDS

    return bool(argv) and (argv[0] in SUBCOMMANDS or "--headless" in argv or any(a in HELP_FLAGS for a in argv))


def app_arguments(argv: list[str]):
    """The app's options, parsed once; the render options given without --headless are refused in one line."""
    from gui.app import option_strings, parser

    args, rest = parser().parse_known_args(argv)
    if rest:
        from retarget.cli.render import headless_parser

        headless_parser().parse_args(argv)  # an option nobody takes: argparse's one line, as `retarget --headless` says it
        given = {token.split("=", 1)[0] for token in rest if token.startswith("--")}
        offending = ", ".join(sorted(given)) if given else " ".join(rest)
        verb = "needs" if len(given) == 1 or (not given and len(rest) == 1) else "need"
        raise RetargetError(f"{offending} {verb} --headless (render from the command line); the app takes only "
                            f"{', '.join(option_strings())}")
    return args


def check_qt_platform() -> None:
    """Qt aborts the process with a long message when its X11 plugin lacks a system library: say it in one line first."""
    from retarget.tools.doctor import missing_qt_libraries, qt_install_line, uses_xcb

    if uses_xcb():
        missing = missing_qt_libraries()
        if missing:
            raise RetargetError(f"the desktop app cannot open a window: Qt's X11 plugin needs {', '.join(missing)}; install them "
                                f"with `{qt_install_line(missing)}` (or use `retarget --headless ...`)")


def check_qt_installed() -> None:
    try:
        import PyQt6.QtWidgets  # noqa: F401 - only whether it imports
    except ImportError as err:
        raise RetargetError(
            f"the desktop app is not available ({err}); install it with `pip install -e .[gui]` or use `retarget --headless ...`"
        ) from None


def run_app(args) -> int:
    """The window on the parsed options, once the machine can show it."""
    check_qt_installed()
    check_qt_platform()
    from gui.app import run

    return run(args)


def open_app(argv: list[str]) -> int:
    return run_app(app_arguments(argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_cli(argv):
        from retarget.cli import main as cli_main

        return cli_main(argv)
    return run_command("retarget", lambda: open_app(argv))
