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
