"""The trainers' shared options are knob fields: the same flags and defaults as before, the library's limits and errors."""

from __future__ import annotations

import pytest

from retarget.config import MAX_SEED, PAPER_STEPS
from retarget.errors import RetargetError
from training.options import TrainingOptions, base_parser, check_args

FLAGS = ("--data", "--models", "--out", "--max-steps", "--batch-size", "--lr", "--lr-warmup", "--weight-decay",
         "--max-grad-norm", "--seed", "--mixed-precision", "--gradient-checkpointing", "--drop-expression", "--drop-id",
         "--save-every", "--resume", "--sample-every", "--sample-count", "--sample-steps", "--log-every", "--num-workers",
         "--subset", "--fixed-timestep", "--fixed-noise", "--no-tensorboard")


def _parse(*argv, drop=0.05):
    parser = base_parser("test", "test", lr=1e-4, max_steps=300, drop=drop)
    return parser.parse_args(["--data", "d", "--out", "o", *map(str, argv)])


def test_every_flag_stays_with_its_trainer_defaults():
    parser = base_parser("test", "test", lr=3e-5, max_steps=77, drop=0.1)
    assert sorted(a.option_strings[0] for a in parser._actions if a.option_strings[0] != "-h") == sorted(FLAGS)
    args = parser.parse_args(["--data", "d", "--out", "o"])
    assert (args.lr, args.max_steps, args.drop_expression, args.drop_id) == (3e-5, 77, 0.1, 0.1)
    assert args.sample_steps == PAPER_STEPS and args.tensorboard and args.resume is None
    assert _parse("--no-tensorboard", "--resume").tensorboard is False and _parse("--resume").resume == "latest"
    without_drop = base_parser("test", "test", lr=1e-4, max_steps=1, drop=None)
    assert not {"--drop-expression", "--drop-id"} & {s for a in without_drop._actions for s in a.option_strings}


def test_the_seed_takes_the_library_range():
    assert check_args(_parse("--seed", 2**40)).seed == 2**40  # above the old 2^32 limit
    assert check_args(_parse("--seed", MAX_SEED)).seed == MAX_SEED
    with pytest.raises(RetargetError, match=r"--seed must be a whole number from 0 to 9223372036854775807"):
        check_args(_parse("--seed", MAX_SEED + 1))


@pytest.mark.parametrize("argv, fragment", [
    (("--max-steps", 0), "--max-steps must be at least 1"),
    (("--save-every", -1), "--save-every must be 0 or more"),
    (("--drop-id", 1.5), "--drop-id must be at most 1"),
    (("--lr", 0), "--lr must be more than 0"),
    (("--lr", 2), "--lr must be at most 1"),
    (("--weight-decay", "nan"), "--weight-decay must be a finite number"),
    (("--fixed-timestep", 1000), "--fixed-timestep must be at most 999"),
    (("--subset", 0), "--subset must be at least 1"),
    (("--sample-steps", 0), "--sample-steps must be at least 1"),
])
def test_a_bad_value_is_one_line_naming_the_flag(argv, fragment):
    with pytest.raises(RetargetError) as err:
        check_args(_parse(*argv))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_the_options_are_a_knob_dataclass():
    options = check_args(_parse("--batch-size", 3, "--fixed-noise"))
    assert isinstance(options, TrainingOptions) and options.batch_size == 3 and options.fixed_noise


@pytest.mark.parametrize("module, argv, fragment", [
    ("distill", ("--huber-c", 0), "--huber-c must be more than 0"),
    ("distill", ("--ema-decay", 1), "--ema-decay must be less than 1"),
    ("train_reference", ("--rank", 0), "--rank must be at least 1"),
    ("train_expression", ("--num-tokens", 0), "--num-tokens must be at least 1"),
])
def test_each_trainers_own_knobs_are_checked_before_any_work(module, argv, fragment, tmp_path, capsys):
    import importlib

    trainer = importlib.import_module(f"training.{module}")
    out = tmp_path / "out"
    assert trainer.main(["--data", str(tmp_path), "--models", "random:tiny", "--out", str(out), *map(str, argv)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()
