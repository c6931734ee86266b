"""The command line: `--headless` renders without a window; subcommands do the rest. `retarget` (retarget_launcher,
above this package and gui/) runs these, or opens the desktop app; `python -m retarget` runs only these.

Subcommands: `download` (the published weights), `testmodels` (random test sets), `extract`,
`bench`, `eval`, `bridge`, `doctor`, `verify`; one module each here, dispatched by `main()`.
Every failure ends in one line on stderr and a non-zero exit, never a traceback
(RETARGET_DEBUG=1 shows it for bug reports).
"""

from __future__ import annotations

import sys

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


# The library never opens the window (it imports nothing from gui/): the command above both does.
NOT_THE_APP = ("`python -m retarget` is the command line (--headless, or a subcommand: see --help); the desktop app "
               "opens with `retarget` (or `python -m retarget_launcher`), with no arguments or its model options")


def dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    if not argv:
        raise RetargetError(NOT_THE_APP)
    args = headless_parser().parse_args(argv)
    if not args.headless:
        raise RetargetError(f"add --headless to render from the command line; {NOT_THE_APP}")
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

