"""`retarget eval`: how well outputs keep the identity and follow the driver's expression.

For each (identity, driver, output) triple (images or videos; a video output is paired frame by
frame with its driver video):

- ID similarity: ArcFace cosine between the identity photo and each output frame (1 = same face).
- Expression error: mean absolute difference of MediaPipe blendshapes between driver and output
  frames, over the 51 facial actions (`_neutral` is a confidence-like score and is left out),
  overall and per face region (retarget.config.mapping.REGIONS).
- Temporal jitter (videos): mean absolute frame-to-frame change of the output's blendshapes, and
  its ratio to the driver's own change (1 = as lively as the driver, above 1 = flicker).

`python -m retarget.tools.evaluation --identity I --driver D --output O [--json PATH]`, or `--pairs FILE`
with a CSV (columns identity, driver, output) or a JSON list of such objects or [i, d, o] triples.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.models import ModelOptions
from retarget.errors import OneLineArgumentParser, BadInputError, NoFaceError, RetargetError, run_command
from retarget.names.kinds import IMAGE_SUFFIXES



def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="retarget eval", description="ID similarity, expression error and jitter of retargeted outputs.")
    parser.add_argument("--identity", type=Path, help="identity photo")
    parser.add_argument("--driver", type=Path, help="driver image or video")
    parser.add_argument("--output", type=Path, help="output image or video (or folder of frames)")
    parser.add_argument("--pairs", type=Path, help="CSV (identity,driver,output columns) or JSON list of triples")
    add_knob_options(parser, ModelOptions, only=("models", "landmarker"),
                     helps={"models": "models for arcface.onnx: hub, a models folder, or random:tiny",
                            "landmarker": "MediaPipe face_landmarker.task"})
    parser.add_argument("--every", type=int, default=1, help="video frame stride (default 1)")
    parser.add_argument("--max-frames", type=int, default=None, help="at most this many frames per video")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def read_pairs(path: Path) -> list[tuple[Path, Path, Path]]:
    if not path.is_file():
        raise BadInputError(f"--pairs {path}: no such file")
    base = path.parent
    rows: list = []
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            for item in data:
                rows.append((item["identity"], item["driver"], item["output"]) if isinstance(item, dict) else tuple(item))
        else:
            with path.open(newline="") as handle:
                for item in csv.DictReader(handle):
                    rows.append((item["identity"], item["driver"], item["output"]))
    except RecursionError:
        raise BadInputError(f"--pairs {path}: its JSON is nested too deeply; give a list of (identity, driver, output) entries") from None
    except (ValueError, KeyError, TypeError) as err:
        raise BadInputError(f"--pairs {path}: expected identity, driver and output for every entry ({type(err).__name__}: {err})") from None
    triples = []
    for row in rows:
        if len(row) != 3:
            raise BadInputError(f"--pairs {path}: entry {row!r} is not an (identity, driver, output) triple")
        triples.append(tuple(Path(p) if Path(p).is_absolute() else base / p for p in row))
    if not triples:
        raise BadInputError(f"--pairs {path}: no entries")
    return triples


@dataclass
class FrameFaces:
    """Per frame: blendshapes (None when no face) and, when asked, the ArcFace vector."""

    blendshapes: list = field(default_factory=list)
    embeddings: list = field(default_factory=list)
    is_video: bool = False


class Evaluator:
    def __init__(self, arcface_path: Path, landmarker_path: Path, every: int = 1, max_frames: int | None = None):
        from retarget.face.identity import ArcFaceEncoder, IdentityEmbedder
        from retarget.face.landmarker import FaceLandmarker

        self.landmarker = FaceLandmarker(landmarker_path, mode="image")
        self.embedder = IdentityEmbedder(ArcFaceEncoder(arcface_path), self.landmarker)
        self.every, self.max_frames = max(1, every), max_frames

    def close(self) -> None:
        self.landmarker.close()

    def frames(self, path: Path):
        from retarget.face.image_io import load_image
        from retarget.media.sources import open_source

        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            yield load_image(path)
            return
        if not path.exists():
            raise BadInputError(f"{path}: no such file or folder")
        kept = 0
        with open_source(str(path)) as source:
            for frame in source:
                if frame.index % self.every or frame.image is None:
                    continue
                yield frame.image
                kept += 1
                if self.max_frames is not None and kept >= self.max_frames:
                    break

    def analyse(self, path: Path, embed: bool) -> FrameFaces:
        faces = FrameFaces(is_video=not (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES))
        for image in self.frames(path):
            observation = self.landmarker.detect(image)
            faces.blendshapes.append(None if observation is None else observation.blendshapes.astype(np.float64))
            if embed:
                faces.embeddings.append(None if observation is None else self.embedder.embed_with_landmarks(image, observation.landmarks))
        return faces

    def identity_vector(self, path: Path) -> np.ndarray:
        from retarget.face.image_io import load_image

        return self.embedder.embed(load_image(path), source=str(path))

    def evaluate(self, identity: Path, driver: Path, output: Path) -> dict:
        identity_vector = self.identity_vector(identity)
        drv = self.analyse(driver, embed=False)
        out = self.analyse(output, embed=True)
        if drv.is_video and out.is_video and len(drv.blendshapes) != len(out.blendshapes):
            # Frames are paired by position: clips of different length would compare the wrong frames.
            raise BadInputError(f"{output} has {len(out.blendshapes)} frames but its driver {driver} has "
                                f"{len(drv.blendshapes)}; evaluate an output rendered from this driver "
                                f"(or compare the first N frames with --max-frames N)")
        return compare(identity_vector, drv, out)


def _action_indices() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from retarget.names.blendshapes import BLENDSHAPE_NAMES
    from retarget.config.mapping import REGIONS

    index = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
    actions = np.array([i for name, i in index.items() if name != "_neutral"])
    regions = {region: np.array([index[n] for n in names]) for region, names in REGIONS.items() if names}
    return actions, regions


def compare(identity_vector: np.ndarray, drv: FrameFaces, out: FrameFaces) -> dict:
    """Metrics of one triple from per-frame analyses (frames paired by position)."""
    actions, regions = _action_indices()
    n = min(len(drv.blendshapes), len(out.blendshapes))
    similarities = [float(np.dot(identity_vector, e)) for e in out.embeddings if e is not None]
    pairs = [(d, o) for d, o in zip(drv.blendshapes[:n], out.blendshapes[:n]) if d is not None and o is not None]
    result = {
        "frames": n,
        "frames_without_face": n - len(pairs),
        "id_similarity": float(np.mean(similarities)) if similarities else None,
        "expression_error": None,
        "region_error": {},
        "jitter": None,
        "driver_jitter": None,
        "jitter_ratio": None,
    }
    if pairs:
        d = np.stack([p[0] for p in pairs])
        o = np.stack([p[1] for p in pairs])
        diff = np.abs(d - o)
        result["expression_error"] = float(diff[:, actions].mean())
        result["region_error"] = {region: float(diff[:, idx].mean()) for region, idx in regions.items()}
        if (drv.is_video or out.is_video) and len(pairs) >= 2:
            out_change = float(np.abs(np.diff(o[:, actions], axis=0)).mean())
            drv_change = float(np.abs(np.diff(d[:, actions], axis=0)).mean())
            result["jitter"], result["driver_jitter"] = out_change, drv_change
            result["jitter_ratio"] = out_change / drv_change if drv_change > 1e-12 else None
    return result


def _fmt(value, width: int = 8, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(width)
    return f"{value:.{digits}f}".rjust(width)


def format_table(results: list[dict]) -> str:
    _, regions = _action_indices()
    names = list(regions)
    header = f"{'output':<28} {'frames':>6} {'ID sim':>8} {'exp err':>8} " + " ".join(f"{r[:7]:>7}" for r in names) + f" {'jitter':>8} {'ratio':>6}"
    lines = [header, "-" * len(header)]
    for row in results:
        label = Path(row["output"]).name[:28]
        if "error" in row:
            lines.append(f"{label:<28} error: {row['error']}")
            continue
        lines.append(
            f"{label:<28} {row['frames']:>6} {_fmt(row['id_similarity'])} {_fmt(row['expression_error'])} "
            + " ".join(_fmt(row["region_error"].get(r), 7) for r in names)
            + f" {_fmt(row['jitter'], 8, 4)} {_fmt(row['jitter_ratio'], 6, 2)}"
        )
    return "\n".join(lines)


def summarise(results: list[dict]) -> dict:
    ok = [r for r in results if "error" not in r]

    def mean(key):
        values = [r[key] for r in ok if r.get(key) is not None]
        return float(np.mean(values)) if values else None

    return {"pairs": len(results), "failed": len(results) - len(ok), "id_similarity": mean("id_similarity"),
            "expression_error": mean("expression_error"), "jitter_ratio": mean("jitter_ratio")}


def run(args: argparse.Namespace) -> dict:
    from retarget.weights.assets import resolve_models
    from retarget.face.landmarker import landmarker_for

    if args.pairs is not None:
        if any(getattr(args, k) is not None for k in ("identity", "driver", "output")):
            raise RetargetError("give either --pairs or --identity/--driver/--output, not both")
        triples = read_pairs(args.pairs)
    else:
        missing = [k for k in ("identity", "driver", "output") if getattr(args, k) is None]
        if missing:
            raise RetargetError(f"missing --{missing[0]} (or give --pairs FILE)")
        triples = [(args.identity, args.driver, args.output)]
    if args.every < 1:
        raise RetargetError(f"--every must be at least 1 (got {args.every})")
    if args.max_frames is not None and args.max_frames < 1:
        raise RetargetError(f"--max-frames must be at least 1 (got {args.max_frames})")
    for triple in triples:
        for path in triple:
            if not path.exists():
                raise BadInputError(f"{path}: no such file or folder")
    if args.json is not None:
        from retarget.outputs import check_file_output

        inputs = [(name, path) for triple in triples for name, path in zip(("--identity", "--driver", "--output"), triple)]
        check_file_output(args.json, [*inputs, ("--pairs", args.pairs)], "--json")
    models = from_args(ModelOptions, args)
    files = resolve_models(models.models, progress=lambda line: print(line, file=sys.stderr))
    landmarker = landmarker_for(models.landmarker, files)
    evaluator = Evaluator(files.arcface, landmarker, every=args.every, max_frames=args.max_frames)
    results = []
    try:
        for identity, driver, output in triples:
            row = {"identity": str(identity), "driver": str(driver), "output": str(output)}
            try:
                row.update(evaluator.evaluate(identity, driver, output))
            except (NoFaceError, BadInputError) as err:
                if len(triples) == 1:
                    raise
                row["error"] = str(err)
            results.append(row)
    finally:
        evaluator.close()
    return {"results": results, "summary": summarise(results)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("GLOG_minloglevel", "2")
    args = build_parser().parse_args(argv)
    return run_command("retarget eval", lambda: _report(args))


def _report(args) -> int:
    report = run(args)
    print(format_table(report["results"]))
    summary = report["summary"]
    if summary["pairs"] > 1:
        print(f"mean over {summary['pairs']} pairs ({summary['failed']} failed): ID sim {_fmt(summary['id_similarity']).strip()}, "
              f"expression error {_fmt(summary['expression_error']).strip()}, jitter ratio {_fmt(summary['jitter_ratio']).strip()}")
    if args.json is not None:
        from retarget.outputs import write_json

        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
