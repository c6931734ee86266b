"""`retarget extract VIDEO --out X.csv`: a video's blendshapes to CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.models import ModelOptions
from retarget.errors import OneLineArgumentParser


def extract_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="retarget extract", description="Write the 52 MediaPipe blendshapes of every frame of a video to CSV.")
    parser.add_argument("video", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="CSV file, one row per frame")
    parser.add_argument("--format", choices=("retarget", "livelinkface"), default="retarget",
                        help="retarget (default): a timestamp column and the 52 MediaPipe names; livelinkface: a Live Link "
                             "Face take (Timecode, BlendShapeCount, the ARKit curves in LLF's order, TongueOut and rotations as 0)")
    add_knob_options(parser, ModelOptions, only=("landmarker",), helps={"landmarker": "MediaPipe face_landmarker.task"})
    return parser


def run_extract(argv: list[str]) -> int:
    args = extract_parser().parse_args(argv)
    from retarget.tools.extract import extract_blendshapes

    summary = extract_blendshapes(args.video, args.out, landmarker=from_args(ModelOptions, args).landmarker, progress=sys.stderr.isatty(),
                                  format=args.format)
    print(f"wrote {args.out}: {summary.frames} rows, {summary.frames_without_face} without a face")
    return 0
