"""The bad-input corpus of issue #11, table-driven: every case must end with a non-zero exit, exactly one
`error:` line (no traceback, no "unexpected error"), nothing written, and every input byte-identical.

Each case gets a fresh workspace (identity photo, a 3-frame driver video, a driver still, an image
folder, a folder of the user's own files) and may add inputs of its own; the whole workspace is
compared before and after, so a refused run that created, changed or removed anything fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from tests.conftest import cut_clip, needs_shared
from tests.test_cli import error_lines

pytestmark = needs_shared

SEED_2_64 = str(2**64)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: Pillow's decompression-bomb check refuses it at open()."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


class Evil:
    """Pickled, this would run a command on load; weights_only loading must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(path: Path, marker: Path, base: dict | None = None) -> Path:
    import torch

    state = dict(base or {})
    state["payload"] = Evil(marker)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def template(shared_dir, tmp_path_factory) -> Path:
    """The inputs every case starts from (copied per case)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("corpus")
    shutil.copy(shared_dir / "media" / "identity_hepburn_small.png", root / "identity.png")
    shutil.copy(shared_dir / "media" / "expression_exp1_rgba.png", root / "still.png")
    cut_clip(shared_dir / "media" / "driver_d0.mp4", root / "driver.mp4", 3)
    (root / "frames").mkdir()
    with Image.open(root / "still.png") as im:
        small = im.convert("RGB").resize((64, 64))
    for i in range(3):
        small.save(root / "frames" / f"f{i}.png")
    (root / "mine").mkdir()
    (root / "mine" / "keep.txt").write_text("the user's own file")
    (root / "sub").mkdir()
    return root


def snapshot(root: Path) -> dict[str, str | None]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def headless(ws: Path, landmarker: Path, *extra) -> list[str]:
    return ["--headless", "--models", "random:tiny", "--steps", "1", "--landmarker", str(landmarker),
            "--identity", str(ws / "identity.png"), *map(str, extra)]


def video(ws, lm, *extra):
    return headless(ws, lm, "--driver", ws / "driver.mp4", *extra)


def _unsafe_encoder(ws, lm, models):
    import torch

    copy = ws / "models"
    shutil.copytree(models, copy)
    encoder = copy / "encoder" / "pytorch_model.bin"
    evil_pickle(encoder, ws / "PWNED", torch.load(encoder, weights_only=True))
    args = headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png")
    args[args.index("random:tiny")] = str(copy)
    return args


def _truncated_lora(ws, lm, models):
    data = (models / "ref_adapter" / "pytorch_lora_weights.safetensors").read_bytes()
    (ws / "cut.safetensors").write_bytes(data[: len(data) // 2])
    return headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png", "--ref-lora", ws / "cut.safetensors")


def _bomb_identity(ws, lm, models):
    (ws / "huge.png").write_bytes(png_header_only(20000, 20000))
    args = headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png")
    args[args.index(str(ws / "identity.png"))] = str(ws / "huge.png")
    return args


def _bomb_first_in_folder(ws, lm, models):
    (ws / "frames" / "f0.png").write_bytes(png_header_only(20000, 20000))
    return headless(ws, lm, "--driver", ws / "frames", "--out", ws / "o.mp4")


def _locked_work_folder(ws, lm, models):
    from retarget.engine import work_lock_for

    lock = work_lock_for(ws / "o.mp4")
    lock.__enter__()  # "another job" holds the lock (released by the test after the run)
    _locked_work_folder.held = lock
    return video(ws, lm, "--out", ws / "o.mp4")


# (case id, argv builder (workspace, landmarker, tiny models) -> argv, fragments of the error line, cwd ("" = unchanged))
CASES = [
    # data loss: an output that is an input
    ("out-is-video-driver", lambda ws, lm, m: video(ws, lm, "--out", ws / "driver.mp4"), ["driver.mp4", "same path"], ""),
    ("out-is-still-driver", lambda ws, lm, m: headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "still.png"), ["same path"], ""),
    ("out-is-image-folder-driver", lambda ws, lm, m: headless(ws, lm, "--driver", ws / "frames", "--out", ws / "frames"), ["same path"], ""),
    ("out-inside-image-folder-driver", lambda ws, lm, m: headless(ws, lm, "--driver", ws / "frames", "--out", ws / "frames" / "o.mp4"), ["inside"], ""),
    ("out-is-identity-still", lambda ws, lm, m: headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "identity.png"), ["--identity"], ""),
    ("out-is-identity-video", lambda ws, lm, m: video(ws, lm, "--out", ws / "identity.png"), ["--identity"], ""),
    ("side-by-side-is-driver", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--side-by-side", ws / "driver.mp4"), ["--side-by-side", "same path"], ""),
    ("side-by-side-is-out", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--side-by-side", ws / "o.mp4"), ["--side-by-side", "--out"], ""),
    ("png-sequence-into-foreign-folder", lambda ws, lm, m: video(ws, lm, "--out", ws / "mine"), ["other files"], ""),
    ("out-dot", lambda ws, lm, m: video(ws, lm, "--out", "."), ["--out ."], "."),
    ("out-dotdot-from-subfolder", lambda ws, lm, m: video(ws, lm, "--out", ".."), ["--out .."], "sub"),
    ("out-parent-is-a-file", lambda ws, lm, m: video(ws, lm, "--out", ws / "still.png" / "o.mp4"), ["is a file"], ""),
    ("extract-out-is-the-video", lambda ws, lm, m: ["extract", str(ws / "driver.mp4"), "--out", str(ws / "driver.mp4")], ["same path"], ""),
    ("extract-parent-is-a-file", lambda ws, lm, m: ["extract", str(ws / "driver.mp4"), "--out", str(ws / "still.png" / "x.csv")], ["is a file"], ""),
    ("eval-json-is-an-input", lambda ws, lm, m: ["eval", "--models", "random:tiny", "--identity", str(ws / "identity.png"), "--driver", str(ws / "still.png"),
                                                "--output", str(ws / "still.png"), "--json", str(ws / "identity.png")], ["--json", "same path"], ""),
    ("eval-json-unwritable-place", lambda ws, lm, m: ["eval", "--models", "random:tiny", "--identity", str(ws / "identity.png"), "--driver", str(ws / "still.png"),
                                                     "--output", str(ws / "still.png"), "--json", str(ws / "still.png" / "r.json")], ["--json", "is a file"], ""),
    ("bench-json-unwritable-place", lambda ws, lm, m: ["bench", "--models", "random:tiny", "--json", str(ws / "still.png" / "b.json")], ["--json", "is a file"], ""),
    ("testmodels-into-foreign-folder", lambda ws, lm, m: ["testmodels", "--out", str(ws / "mine")], ["not empty"], ""),
    # numbers: NaN passes `<` checks, so each must be refused by a finiteness test
    ("seed-beyond-64-bits", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--seed", SEED_2_64), ["--seed"], ""),
    ("seed-negative", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--seed", "-1"), ["--seed"], ""),
    ("exp-scale-inf", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--exp-scale", "inf"), ["--exp-scale"], ""),
    ("cfg-nan", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--cfg", "nan"), ["--cfg"], ""),
    ("ref-scale-nan", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--ref-scale", "nan"), ["--ref-scale"], ""),
    ("smoothing-cutoff-nan", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--smoothing-cutoff", "nan"), ["--smoothing-cutoff"], ""),
    ("smoothing-beta-inf", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--smoothing-beta", "inf"), ["--smoothing-beta"], ""),
    ("gain-nan", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--gain", "mouth=nan"), ["--gain mouth"], ""),
    ("intensity-inf", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--intensity", "inf"), ["--intensity"], ""),
    ("min-change-nan", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--min-change", "nan"), ["--min-change"], ""),
    ("steps-0", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--steps", "0"), ["--steps"], ""),
    ("batch-size-0", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--batch-size", "0"), ["--batch-size"], ""),
    ("neutral-frame-past-the-end", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--relative", "--neutral-frame", "99"), ["--neutral-frame", "3 frames"], ""),
    ("bench-frames-0", lambda ws, lm, m: ["bench", "--frames", "0"], ["--frames"], ""),
    # files that must never be loaded unsafely, and broken ones
    ("unsafe-pickle-encoder", _unsafe_encoder, ["encoder", "not a safe checkpoint"], ""),
    ("unsafe-pickle-exp-adapter", lambda ws, lm, m: headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png", "--exp-adapter",
                                                            evil_pickle(ws / "exp.bin", ws / "PWNED")), ["exp.bin", "not a safe checkpoint"], ""),
    ("unsafe-pickle-smirk", lambda ws, lm, m: headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png", "--smirk",
                                                      evil_pickle(ws / "SMIRK_em1.pt", ws / "PWNED")), ["SMIRK_em1.pt", "not a safe checkpoint"], ""),
    ("truncated-ref-lora", _truncated_lora, ["cut.safetensors", "truncated or corrupt"], ""),
    ("decompression-bomb-identity", _bomb_identity, ["huge.png", "too large"], ""),
    ("decompression-bomb-first-driver-image", _bomb_first_in_folder, ["f0.png"], ""),
    # two jobs on one work folder
    ("work-folder-in-use", _locked_work_folder, ["in use by another job", "process"], ""),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(case, template, tmp_path, landmarker_path, tiny_models_dir, capsys, monkeypatch):
    from retarget.cli import main

    name, build, fragments, cwd = case
    ws = tmp_path / "ws"
    shutil.copytree(template, ws)
    argv = build(ws, landmarker_path, tiny_models_dir)
    if cwd:
        monkeypatch.chdir(ws / cwd)
    before = snapshot(ws)
    monkeypatch.delenv("RETARGET_DEBUG", raising=False)
    try:
        code = main(argv)
    finally:
        held = getattr(_locked_work_folder, "held", None)
        if name == "work-folder-in-use" and held is not None:
            held.__exit__(None, None, None)
            _locked_work_folder.held = None
    captured = capsys.readouterr()
    # progress lines (random:tiny being written on first use) may come first; the error is one line, the last
    lines = [line for line in error_lines(captured.err) if "error" in line.lower()]
    assert code == 2, (code, captured.err)
    assert "Traceback" not in captured.err and "unexpected error" not in captured.err
    assert len(lines) == 1 and ": error: " in lines[0] and captured.err.strip().endswith(lines[0]), captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "weights_only=False" not in captured.err and "likely succeed" not in captured.err
    assert not (ws / "PWNED").exists()  # no pickled code ran
    if name == "work-folder-in-use":
        before.pop(".o.mp4.work.lock", None)  # the other job's lock file, removed when it released
    assert snapshot(ws) == before  # nothing written, nothing removed, every input byte-identical

