"""Expected failures become one plain line (retarget/errors.py): first lines, library failures explained, bugs still reported as bugs."""

from __future__ import annotations

import errno

import pytest

from retarget.errors import EXIT_ERROR, RetargetError, first_line, run_command


def test_first_line_of_an_empty_message_is_the_type_not_an_index_error():
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(RuntimeError("\n  \n")) == "RuntimeError"
    assert first_line(OSError("one\ntwo")) == "one"


def test_first_line_never_relays_torchs_unsafe_advice():
    text = ("Weights only load failed. This file can still be loaded, to do so you have two options, do those steps "
            "only if you trust the source of the checkpoint.\n\t(1) In PyTorch 2.6, we changed the default value of the "
            "`weights_only` argument in `torch.load` from `False` to `True`. Re-running `torch.load` with "
            "`weights_only` set to `False` will likely succeed, but it can result in arbitrary code execution.")
    line = first_line(RuntimeError(text))
    assert "will likely succeed" not in line and "can still be loaded" not in line


@pytest.mark.parametrize("err, fragments", [
    (OSError(errno.ENOSPC, "No space left on device", "/out/o.mp4"), ["no space left", "/out/o.mp4", "--resume"]),
    (OSError(errno.EROFS, "Read-only file system", "/ro/o.png"), ["/ro/o.png", "read-only"]),
    (PermissionError(errno.EACCES, "Permission denied", "/x/o.png"), ["/x/o.png", "permission denied"]),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f.png/o.png"), ["/f.png/o.png", "is a file"]),
])
def test_os_errors_on_output_become_one_line(err, fragments, capsys):
    def body():
        raise err

    assert run_command("retarget", body) == EXIT_ERROR
    line = capsys.readouterr().err.strip()
    assert len(line.splitlines()) == 1 and line.startswith("retarget: error: ") and "unexpected" not in line
    for fragment in fragments:
        assert fragment in line


def test_a_decompression_bomb_and_a_corrupt_json_are_messages(capsys):
    import json

    from PIL import Image

    for err in (Image.DecompressionBombError("Image size (400000000 pixels) exceeds limit"), json.JSONDecodeError("x", "{", 0)):
        def body(err=err):
            raise err

        assert run_command("retarget", body) == EXIT_ERROR
        assert "unexpected" not in capsys.readouterr().err


def test_a_bug_still_reports_as_unexpected(capsys):
    def body():
        raise ZeroDivisionError()

    assert run_command("retarget", body) == 1
    assert "unexpected error: ZeroDivisionError: ZeroDivisionError" in capsys.readouterr().err


def test_retarget_error_message_is_printed_whole(capsys):
    def body():
        raise RetargetError("")

    assert run_command("retarget", body) == 2
    assert capsys.readouterr().err.strip() == "retarget: error: RetargetError"
