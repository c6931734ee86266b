"""User-facing errors: each carries one line that the CLI prints as-is (no traceback)."""


class RetargetError(Exception):
    """An error the user can act on; str(err) is a complete one-line message."""


class NoFaceError(RetargetError):
    """No human face was found where one is needed."""


class MissingWeightsError(RetargetError):
    """Model files are missing or cannot be fetched."""


class BadInputError(RetargetError):
    """An input file cannot be read or is not what it claims to be."""


class JobInterrupted(RetargetError):
    """A job was stopped (Ctrl-C, a signal, Cancel); what it rendered is kept for --resume."""


def run_command(prog: str, body, interrupted: str = "interrupted") -> int:
    """Run a command's body; every failure becomes one line on stderr and an exit code, never a traceback.

    RetargetError -> 2, a stop (Ctrl-C, SIGTERM, JobInterrupted) -> 130, anything else (a bug) -> 1,
    with the traceback only when RETARGET_DEBUG is set.
    """
    import os
    import sys

    try:
        return body()
    except JobInterrupted as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 130
    except RetargetError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("RETARGET_DEBUG"):
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        print(f"{prog}: unexpected error: {type(err).__name__}: {first} (set RETARGET_DEBUG=1 for details)", file=sys.stderr)
        return 1
