"""`retarget doctor`: the report a support thread asks for; exit 1 when the app's default path lacks something."""

from __future__ import annotations

import argparse
import os

from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.models import ModelOptions
from retarget.errors import OneLineArgumentParser


def doctor_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="retarget doctor",
        description="Print this machine's setup (OS, Python, torch, GPU and free memory), which model files are present "
                    "or missing (with sizes and the command that fetches them), the MediaPipe model, SMIRK, SCRFD, the "
                    "expression bridge, whether Qt can open a window, and the video codecs. Exits 1 when something the "
                    "app's default path needs is missing. Downloads nothing.")
    add_knob_options(parser, ModelOptions, only=("models", "landmarker"), defaults={"models": os.environ.get("RETARGET_MODELS", "hub")},
                     helps={"models": "hub (default, the Hugging Face cache), a models folder, or random:tiny; also $RETARGET_MODELS",
                            "landmarker": "MediaPipe face_landmarker.task to check instead of the usual places"})
    return parser


def run_doctor(argv: list[str]) -> int:
    from retarget.tools.doctor import exit_code, report, run_checks

    args = doctor_parser().parse_args(argv)
    models = from_args(ModelOptions, args)
    checks = run_checks(models.models, models.landmarker)
    print(report(checks))
    return exit_code(checks)
