"""`retarget`: the desktop app with no arguments; `--headless` renders without a window.

Subcommands: `download` (the published weights), `testmodels` (random test sets), `extract`,
`bench`, `eval`, `bridge`, `doctor`, `verify`; one module each here, dispatched by `main()`.
Every failure ends in one line on stderr and a non-zero exit, never a traceback
(RETARGET_DEBUG=1 shows it for bug reports).
"""

from __future__ import annotations

import sys

from retarget.cli.app import APP_OPTIONS, run_app
from retarget.cli.bench import run_bench
from retarget.cli.bridge import run_bridge
from retarget.cli.doctor import run_doctor
from retarget.cli.download import run_download
from retarget.cli.eval import run_eval
from retarget.cli.extract import run_extract
from retarget.cli.render import headless_parser, run_headless
from retarget.cli.testmodels import run_testmodels
from retarget.cli.verify import run_verify
from retarget.errors import RetargetError, run_command

SUBCOMMANDS = {
    "download": run_download,
    "testmodels": run_testmodels,
    "extract": run_extract,
    "bench": run_bench,
    "eval": run_eval,
    "bridge": run_bridge,
    "doctor": run_doctor,
    "verify": run_verify,
}


def dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    if not argv:
        return run_app()
    args = headless_parser().parse_args(argv)
    if not args.headless:
        given = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
        headless_only = sorted(given - set(APP_OPTIONS))
        if not headless_only:
            return run_app(argv)
        raise RetargetError(f"{', '.join(headless_only)} need --headless (render from the command line); the app takes only "
                            f"{', '.join(APP_OPTIONS)}")
    return run_headless(args)


def _stop_on_sigterm() -> None:
    """SIGTERM stops a job like Ctrl-C: files closed, rendered frames kept for --resume."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _stop_on_sigterm()
    return run_command("retarget", lambda: dispatch(argv))

