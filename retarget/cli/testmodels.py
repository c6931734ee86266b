"""`retarget testmodels`: a randomly initialised model set in the published layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from retarget.errors import quiet_libraries
from retarget.errors import OneLineArgumentParser, RetargetError


def testmodels_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="retarget testmodels",
        description="Write a RANDOMLY INITIALISED model set in the published layout (for tests and timing; output is noise).",
    )
    parser.add_argument("--size", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--out", type=Path, required=True, help="folder to create")
    parser.add_argument("--exp-dim", type=int, choices=(55, 52, 51), default=55, help="Expression Adapter input width (55 = FLAME, 52/51 = blendshapes)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def run_testmodels(argv: list[str]) -> int:
    args = testmodels_parser().parse_args(argv)
    quiet_libraries()
    from retarget.weights.testmodels import write_test_models

    try:
        write_test_models(args.out, size=args.size, seed=args.seed, exp_dim=args.exp_dim)
    except FileExistsError as err:
        raise RetargetError(str(err)) from None
    print(f"wrote RANDOM {args.size} test models to {args.out} (not real weights; use --models {args.out} for tests only)")
    return 0
