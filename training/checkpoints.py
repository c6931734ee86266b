"""Training checkpoints: where they are, the step each holds, and that every file a resume reads is sound."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from retarget.errors import BadInputError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINABLE_FILE = "trainable.safetensors"
EXTRA_STATE_FILE = "trainer_state.safetensors"  # a trainer's own tensors beyond the trainable ones (e.g. an EMA)
STATE_FILE = "training_state.json"
LOSSES_FILE = "losses.jsonl"


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and (p / STATE_FILE).is_file()]
    return sorted(found)


def check_training_output(args: argparse.Namespace) -> None:
    """--out: not an input, writable, and new, empty, or a training folder of ours (so --resume finds it)."""
    from retarget.outputs import check_folder_target, check_output, check_writable, is_ours, mark

    inputs = [("--data", args.data)]
    if args.models != "hub" and not str(args.models).startswith("random:"):
        inputs.append(("--models", args.models))
    check_output(args.out, inputs)
    check_writable(args.out)
    if args.out.is_dir() and not is_ours(args.out) and (args.out / "config.json").is_file() and checkpoints(args.out):
        mark(args.out)  # a training folder written before folders carried the marker
    check_folder_target(args.out)


def read_step(checkpoint: Path) -> int:
    """The step a checkpoint was saved at, from its state file; a damaged file is refused."""
    path = checkpoint / STATE_FILE
    try:
        step = json.loads(path.read_text(encoding="utf-8"))["step"]
        if not isinstance(step, int) or step < 0:
            raise ValueError(step)
    except (OSError, ValueError, KeyError, TypeError):
        raise BadInputError(f"{path}: is damaged (no readable step); resume from an earlier checkpoint with "
                            f"--resume {checkpoint.parent}/checkpoint-N") from None
    return step


def verify_checkpoint(path: Path, process_index: int = 0) -> None:
    """Every file a resume reads loads as tensors only (never unsafely): trainable weights, optimizer,
    scheduler and this process's random state. A bad one is refused, so exact resume is never lost quietly."""
    from accelerate.utils import load as accelerate_load
    from safetensors.torch import load_file

    from retarget.errors import describe_file_error

    hint = f"; resume from an earlier checkpoint with --resume {path.parent}/checkpoint-N"
    trainable = path / TRAINABLE_FILE
    try:
        load_file(trainable)
    except Exception as err:
        raise BadInputError(describe_file_error(trainable, err, "checkpoint file") + hint) from None
    for name in ("optimizer.bin", "scheduler.bin", f"random_states_{process_index}.pkl"):
        file = path / name
        if not file.is_file():
            raise BadInputError(f"{file}: is missing from the checkpoint{hint}")
        try:
            state = accelerate_load(file, map_location="cpu", weights_only=True)  # accelerate's safe globals (numpy states)
        except Exception as err:
            raise BadInputError(describe_file_error(file, err, "checkpoint file") + hint) from None
        if not isinstance(state, dict):
            raise BadInputError(f"{file}: is not a training state (expected a dictionary){hint}")
        if name.startswith("random_states"):
            wanted = ("random_state", "numpy_random_seed", "torch_manual_seed")
            if any(key not in state for key in wanted):
                raise BadInputError(f"{file}: is not a random-state file (missing {', '.join(k for k in wanted if k not in state)}){hint}")
