"""`retarget download --to DIR`: the published weights into a models folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from retarget.errors import OneLineArgumentParser


def download_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="retarget download",
        description="Fetch every file of the published pipeline into a models folder: the FoivosPar/Arc2Face repo, "
                    "the SD 1.5 VAE/tokenizer/scheduler, SMIRK_em1.pt and the antelopev2 detector (Google Drive, via gdown) "
                    "and MediaPipe's face_landmarker.task. Files already there are skipped; interrupted downloads resume.")
    parser.add_argument("--to", type=Path, required=True, help="models folder to fill (created if needed)")
    return parser


def run_download(argv: list[str]) -> int:
    args = download_parser().parse_args(argv)
    from retarget.weights.assets import download_models

    folder = download_models(args.to)
    print(f"models ready in {folder}; use --models {folder}")
    return 0
