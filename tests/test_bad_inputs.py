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
import stat
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


def _entry(path: Path) -> str | None:
    """A regular file's hash, a link's target (and its file's hash), a special file's kind, None for a folder."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return f"link:{os.readlink(path)}:" + (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "")
    if stat.S_ISREG(mode):
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return None if stat.S_ISDIR(mode) else f"special:{stat.S_IFMT(mode)}:{os.lstat(path).st_rdev}"


def snapshot(root: Path) -> dict[str, str | None]:
    return {str(p.relative_to(root)): _entry(p) for p in sorted(root.rglob("*"))}


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


def _poisoned(source: Path, target: Path, value: float) -> Path:
    """A copy of a weights file (safetensors or a torch state) with every float tensor set to NaN or inf."""
    import torch

    def poison(obj):
        if isinstance(obj, torch.Tensor):
            return torch.full_like(obj, value) if obj.is_floating_point() else obj
        if isinstance(obj, dict):
            return {k: poison(v) for k, v in obj.items()}
        return obj

    if source.suffix == ".safetensors":
        from safetensors.torch import load_file, save_file

        save_file(poison(load_file(source)), target)
    else:
        torch.save(poison(torch.load(source, weights_only=True)), target)
    return target


def _nan_exp_adapter(ws, lm, models):
    bad = _poisoned(models / "exp_adapter" / "exp_adapter.bin", ws / "nan_exp.bin", float("nan"))
    return video(ws, lm, "--out", ws / "o.mp4", "--exp-adapter", bad)


def _nan_ref_lora(ws, lm, models):
    bad = _poisoned(models / "ref_adapter" / "pytorch_lora_weights.safetensors", ws / "nan_lora.safetensors", float("nan"))
    return headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png", "--ref-lora", bad)


def _inf_unet(ws, lm, models):
    copy = ws / "models"
    shutil.copytree(models, copy)
    weights = copy / "arc2face" / "diffusion_pytorch_model.safetensors"
    _poisoned(weights, weights, float("inf"))
    args = headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png")
    args[args.index("random:tiny")] = str(copy)
    return args


def _batch_into_foreign_folder(ws, lm, models):
    shutil.copy(ws / "driver.mp4", ws / "driver2.mp4")
    (ws / "mine" / "driver.mp4").write_bytes(b"the user's own a.mp4")  # the batch would name its output so
    return headless(ws, lm, "--driver", ws / "driver.mp4", ws / "driver2.mp4", "--out", ws / "mine")


def _link(ws: Path, name: str, target: str) -> Path:
    (ws / name).symlink_to(target)
    return ws / name


def _fifo(ws: Path, name: str) -> Path:
    os.mkfifo(ws / name)
    return ws / name


def _device(ws: Path, name: str) -> Path:
    """A character device node (the same one /dev/null is): only root may make one."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(ws / name, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return ws / name


def _eval_json(ws, target):
    return ["eval", "--models", "random:tiny", "--identity", str(ws / "identity.png"), "--driver", str(ws / "still.png"),
            "--output", str(ws / "still.png"), "--json", str(target)]


def _deep_json(ws: Path, name: str) -> Path:
    (ws / name).write_text("[" * 200_000 + "]" * 200_000)
    return ws / name


def _locked_extract(ws, lm, models):
    from retarget.engine import work_lock_for

    lock = work_lock_for(ws / "take.csv")
    lock.__enter__()  # "another extract" writes this CSV (released by the test after the run)
    _locked_work_folder.held = lock
    return ["extract", str(ws / "driver.mp4"), "--out", str(ws / "take.csv"), "--landmarker", str(lm)]


def _bundle_without_models(ws, lm, models):
    import zipfile

    with zipfile.ZipFile(lm) as whole, zipfile.ZipFile(ws / "part.task", "w") as part:
        part.writestr("face_detector.tflite", whole.read("face_detector.tflite"))
    args = video(ws, lm, "--out", ws / "o.mp4")
    args[args.index(str(lm))] = str(ws / "part.task")
    return args


def _binary_tokenizer_vocab(ws, lm, models):
    copy = ws / "models"
    shutil.copytree(models, copy)
    (copy / "sd15" / "tokenizer" / "vocab.json").write_bytes(bytes(range(256)) * 8)
    args = headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png")
    args[args.index("random:tiny")] = str(copy)
    return args


def _csv_take(ws: Path, times) -> Path:
    from retarget.names.blendshapes import BLENDSHAPE_NAMES

    rows = ["timestamp," + ",".join(BLENDSHAPE_NAMES)]
    rows += [f"{t}," + ",".join(["0.1"] * len(BLENDSHAPE_NAMES)) for t in times]
    (ws / "take.csv").write_text("\n".join(rows) + "\n")
    return ws / "take.csv"


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
    # issue #25: never write through a link, never replace a device, fifo or folder of the user's
    ("batch-into-foreign-folder", _batch_into_foreign_folder, ["mine", "other files"], ""),
    ("out-is-a-link-to-a-user-file", lambda ws, lm, m: video(ws, lm, "--out", _link(ws, "o.mp4", "mine/keep.txt")), ["symbolic link"], ""),
    ("out-partial-name-is-a-link", lambda ws, lm, m: (_link(ws, ".o.partial.mp4", "mine/keep.txt"), video(ws, lm, "--out", ws / "o.mp4"))[1],
     [".o.partial.mp4", "symbolic link"], ""),
    # the audio mux's temporary, beside the partial file
    ("out-muxing-name-is-a-link", lambda ws, lm, m: (_link(ws, "..o.partial.muxing.mp4", "mine/keep.txt"),
                                                     video(ws, lm, "--out", ws / "o.mp4"))[1],
     ["..o.partial.muxing.mp4", "symbolic link"], ""),
    ("still-partial-name-is-a-link", lambda ws, lm, m: (_link(ws, ".o.partial.png", "mine/keep.txt"),
                                                        headless(ws, lm, "--driver", ws / "still.png", "--out", ws / "o.png"))[1], ["symbolic link"], ""),
    ("out-is-a-fifo", lambda ws, lm, m: video(ws, lm, "--out", _fifo(ws, "o.mp4")), ["named pipe"], ""),
    ("eval-json-is-a-device", lambda ws, lm, m: _eval_json(ws, _device(ws, "null.json")), ["--json", "character device"], ""),
    ("eval-json-is-a-fifo", lambda ws, lm, m: _eval_json(ws, _fifo(ws, "r.json")), ["--json", "named pipe"], ""),
    ("eval-json-is-a-link", lambda ws, lm, m: _eval_json(ws, _link(ws, "r.json", "mine/keep.txt")), ["--json", "symbolic link"], ""),
    ("extract-csv-is-a-link", lambda ws, lm, m: ["extract", str(ws / "driver.mp4"), "--out", str(_link(ws, "t.csv", "mine/keep.txt"))],
     ["symbolic link"], ""),
    ("side-by-side-onto-a-device", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--side-by-side", _device(ws, "sbs.mp4")),
     ["--side-by-side", "character device"], ""),
    ("side-by-side-without-suffix", lambda ws, lm, m: video(ws, lm, "--out", ws / "o.mp4", "--side-by-side", ws / "sbs"),
     ["--side-by-side", "video name"], ""),
    ("work-folder-is-a-link", lambda ws, lm, m: (_link(ws, ".o.mp4.work", "mine"), video(ws, lm, "--out", ws / "o.mp4"))[1],
     [".o.mp4.work", "not a work folder"], ""),
    ("work-lock-is-a-link", lambda ws, lm, m: (_link(ws, ".o.mp4.work.lock", "mine/keep.txt"), video(ws, lm, "--out", ws / "o.mp4"))[1],
     ["lock file", "symbolic link"], ""),
    ("out-parent-is-a-link-loop", lambda ws, lm, m: (_link(ws, "loop", "loop"), video(ws, lm, "--out", ws / "loop" / "o.mp4"))[1],
     ["loop"], ""),
    ("identity-is-a-link-loop", lambda ws, lm, m: [a if a != str(ws / "identity.png") else str(_link(ws, "me.png", "me.png"))
                                                   for a in video(ws, lm, "--out", ws / "o.mp4")], ["me.png", "loop"], ""),
    ("extract-csv-in-use", _locked_extract, ["in use by another job"], ""),
    # issue #25: a broken model file is named, nothing is written (no black frames, no work folder)
    ("nan-exp-adapter", _nan_exp_adapter, ["nan_exp.bin", "NaN/inf"], ""),
    ("nan-ref-lora", _nan_ref_lora, ["nan_lora.safetensors", "NaN/inf"], ""),
    ("inf-unet", _inf_unet, ["UNet", "arc2face", "NaN/inf"], ""),
    # issue #25: deeply nested JSON is a bad file, not a RecursionError
    ("expression-json-nested-too-deep", lambda ws, lm, m: headless(ws, lm, "--expression", _deep_json(ws, "deep.json"), "--out", ws / "o.png"),
     ["deep.json", "nested too deeply"], ""),
    ("eval-pairs-nested-too-deep", lambda ws, lm, m: ["eval", "--models", "random:tiny", "--pairs", str(_deep_json(ws, "pairs.json"))],
     ["pairs.json", "nested too deeply"], ""),
    # issue #25: the remaining tracebacks and smaller ones
    ("landmarker-bundle-without-its-models", _bundle_without_models, ["part.task", "not a usable"], ""),
    ("binary-tokenizer-vocab", _binary_tokenizer_vocab, ["tokenizer", "cannot be loaded"], ""),
    ("csv-timestamps-going-backwards", lambda ws, lm, m: headless(ws, lm, "--driver", _csv_take(ws, [0.0, 0.04, 0.02, 0.06]),
                                                                 "--out", ws / "o.mp4"), ["take.csv", "backwards", "row 4"], ""),
    ("csv-driver-through-a-pipe", lambda ws, lm, m: headless(ws, lm, "--driver", _fifo(ws, "take.csv"), "--out", ws / "o.mp4"),
     ["take.csv", "pipe", "save it to a file"], ""),
    ("driver-pipe-without-suffix", lambda ws, lm, m: headless(ws, lm, "--driver", _fifo(ws, "63"), "--out", ws / "o.mp4"),
     ["63", "pipe"], ""),
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
        if name in ("work-folder-in-use", "extract-csv-in-use") and held is not None:
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
    if name in ("work-folder-in-use", "extract-csv-in-use"):
        before.pop(".o.mp4.work.lock", None)
        before.pop(".take.csv.work.lock", None)  # the other job's lock file, removed when it released
    assert snapshot(ws) == before  # nothing written, nothing removed, every input byte-identical



@pytest.mark.parametrize("argv", [["--headless", "--steps", "many"], ["extract"], ["eval", "--every", "x"],
                                  ["download", "--no-such-flag"], ["bench", "--frames", "x"]],
                         ids=["render", "extract", "eval", "download", "bench"])
def test_a_refused_command_line_is_one_line_not_the_usage_block(argv, capsys):
    """Issue #25: argparse's refusals are one line naming the problem and where help is, exit 2."""
    from retarget.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(err.strip().splitlines()) == 1 and ": error: " in err and "--help" in err and "usage:" not in err, err
