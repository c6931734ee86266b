"""User-facing errors: each carries one line that the CLI prints as-is (no traceback).

`run_command` is the one place where failures become messages and exit codes; `explain` turns the
expected kinds of library failure (OSError on a file, Pillow's size limit, a refused or corrupt
checkpoint, broken JSON) into a sentence that names the file and says what to do. `quiet_libraries` keeps
the libraries' own warnings (not the user's to act on) off the console, for the CLI and the app alike.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_BUG = 1  # an unexpected error: a bug to report
EXIT_ERROR = 2  # a user error: the message says what to do; nothing was written
EXIT_INCOMPLETE = 3  # finished, but the output is shorter than the input (the summary says why)
EXIT_INTERRUPTED = 130  # stopped (Ctrl-C, SIGTERM, Cancel); rendered frames are kept for --resume

# What torch appends to a weights_only refusal; it advises loading unsafely, which we never do or relay.
_UNSAFE_ADVICE = ("weights_only=false", "can still be loaded", "will likely succeed", "trust the source")


def is_write_failure(err: BaseException) -> bool:
    """An OSError that says the disk would not take the bytes (full, over quota or the file-size limit, read-only,
    failing): the output is not done, whatever step was writing it."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS)


class RetargetError(Exception):
    """An error the user can act on; str(err) is a complete one-line message."""


class NoFaceError(RetargetError):
    """No human face was found where one is needed."""


class MissingWeightsError(RetargetError):
    """Model files are missing or cannot be fetched."""


class MissingModelFile(MissingWeightsError):
    """Loading failed for want of a file; kind ("models", "hub", "landmarker" or "smirk") names which, so a UI can offer its fix."""

    def __init__(self, kind: str, error: BaseException):
        super().__init__(str(error))
        self.kind, self.error = kind, error


class BadInputError(RetargetError):
    """An input file cannot be read or is not what it claims to be."""


class OutputError(RetargetError):
    """An output cannot (or must not) be written where it was asked for."""


class JobInterrupted(RetargetError):
    """A job was stopped (Ctrl-C, a signal, Cancel); what it rendered is kept for --resume."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a refused command line is one line (what is wrong, where help is), not the whole usage block."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {first_line(message, 300)} (see {self.prog} --help)\n")


def first_line(err: BaseException | str, limit: int = 200) -> str:
    """The first non-empty line of an error's text (its type's name when it has none), never torch's unsafe advice."""
    text = err if isinstance(err, str) else str(err)
    for line in text.splitlines():
        line = line.strip()
        if line and not any(advice in line.lower() for advice in _UNSAFE_ADVICE):
            return line[:limit]
    if isinstance(err, BaseException):
        return type(err).__name__
    return ""


def is_unsafe_pickle(err: BaseException) -> bool:
    """torch.load(weights_only=True) refused the file: it holds pickled objects other than tensors."""
    import pickle

    return isinstance(err, pickle.UnpicklingError) or "weights only load failed" in str(err).lower()


def describe_file_error(path, err: BaseException, what: str = "file") -> str:
    """One sentence for a file that could not be loaded as weights/state: unsafe pickle, corrupt archive, I/O."""
    if is_unsafe_pickle(err):
        return (f"{path}: is not a safe checkpoint (it holds pickled Python objects besides tensors, which are never "
                f"loaded); use the original {what} or re-save it as tensors only")
    if isinstance(err, OSError) and not isinstance(err, (EOFError,)) and err.errno is not None:
        return f"{path}: cannot be read ({err.strerror or first_line(err)})"
    return f"{path}: is not a readable {what} (truncated or corrupt: {first_line(err, 120)}); replace it with a complete copy"


def load_tensor_file(path, what: str = "weights file", map_location="cpu"):
    """torch.load with weights_only=True (never unsafely); every failure becomes a BadInputError naming the file."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except Exception as err:  # torch raises many kinds for refused, truncated and foreign files
        raise BadInputError(describe_file_error(path, err, what)) from None


def explain(err: BaseException) -> str | None:
    """A message for an expected kind of failure, or None for a bug."""
    name = type(err).__name__
    if isinstance(err, OSError) and not isinstance(err, EOFError):
        where = err.filename or "a file"
        if err.errno == errno.ENOSPC:
            return f"no space left on the device while writing {where}; free some space and run the same command again (videos: add --resume to keep the frames already rendered)"
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"{where}: permission denied or read-only; choose an output in a folder you can write to"
        if err.errno == errno.ENOTDIR:
            return f"{where}: a part of this path is a file, not a folder; choose another path"
        if err.errno == errno.EISDIR:
            return f"{where}: is a folder; give a file name"
        if err.errno == errno.ENOENT:
            return f"{where}: no such file or folder"
        if err.errno is not None:
            return f"{where}: {err.strerror or first_line(err)}"
    if name == "DecompressionBombError":
        return f"an image is too large to open safely ({first_line(err)}); scale it down and try again"
    if is_unsafe_pickle(err):
        return "a checkpoint is not safe to load (it holds pickled Python objects besides tensors, which are never loaded); use the original file"
    if name in ("SafetensorError", "BadZipFile", "JSONDecodeError") or "PytorchStreamReader" in str(err):
        return f"a file is truncated or corrupt ({first_line(err, 160)}); replace it with a complete copy"
    return None


def user_message(err: BaseException) -> str:
    """One line for the user: our own errors already are one; an expected failure gets explain()'s sentence;
    anything else its first line, prefixed with its type's name."""
    if isinstance(err, RetargetError):
        return str(err)
    expected = explain(err)
    if expected is not None:
        return expected
    first = first_line(err)
    return first if first == type(err).__name__ else f"{type(err).__name__}: {first}"


def run_command(prog: str, body, interrupted: str = "interrupted") -> int:
    """Run a command's body; every failure becomes one line on stderr and an exit code, never a traceback.

    RetargetError -> 2, an expected library failure (see explain) -> 2, a stop (Ctrl-C, SIGTERM,
    JobInterrupted) -> 130, anything else (a bug) -> 1, with the traceback only when RETARGET_DEBUG is set.
    """
    try:
        return body()
    except JobInterrupted as err:
        print(f"{prog}: {first_line(err)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RetargetError as err:
        print(f"{prog}: error: {first_line(err, 1000)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if os.environ.get("RETARGET_DEBUG"):
            raise
        message = explain(err)
        if message is not None:
            print(f"{prog}: error: {message}", file=sys.stderr)
            return EXIT_ERROR
        print(f"{prog}: unexpected error: {type(err).__name__}: {first_line(err)} (set RETARGET_DEBUG=1 for details)",
              file=sys.stderr)
        return EXIT_BUG


def quiet_libraries() -> None:
    """Only errors from diffusers/transformers/MediaPipe: their warnings are not the user's to act on."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
