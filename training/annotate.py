"""`python -m training.annotate SRC... --out DATA`: faces of images and videos -> a training dataset.

For every face: the 512x512 FFHQ-aligned crop (PNG), MediaPipe's 52 blendshapes, the ArcFace
embedding of the aligned crop (as the pipeline embeds identities) and, with --smirk, SMIRK's
FLAME-55 values. One shard per source (see training/data.py for the layout). Resumable: a
source whose "source" record is in the manifest is never processed again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.models import ModelOptions
from retarget.errors import OneLineArgumentParser, RetargetError, run_command
from retarget.names.kinds import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from retarget.outputs import atomic_write
from training.data import MANIFEST, read_manifest

CROP_SIZE = 512


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="python -m training.annotate",
                                     description="Detect, align and annotate faces of images and videos into a training dataset.")
    parser.add_argument("sources", nargs="+", type=Path, help="image/video files or folders (walked recursively)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder (created; a rerun continues it)")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th video frame (default 1)")
    add_knob_options(parser, ModelOptions, only=("models", "landmarker", "smirk"),
                     helps={"models": "models for arcface.onnx: hub, a models folder, or random:tiny",
                            "landmarker": "MediaPipe face_landmarker.task",
                            "smirk": "SMIRK_em1.pt: also store FLAME-55 values (for flame55 adapters)"})
    parser.add_argument("--workers", type=int, default=1, help="parallel processes, each with its own landmarker (default 1)")
    parser.add_argument("--max-frames", type=int, default=None, help="at most this many kept frames per video")
    return parser


def collect_sources(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise RetargetError(f"{path}: no such file or folder")
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES))
        elif path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            found.append(path)
        else:
            raise RetargetError(f"{path}: neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise RetargetError("no images or videos found in " + ", ".join(str(p) for p in paths))
    return unique


def clip_id(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem)[:40]
    return f"{stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"


# ---------------------------------------------------------------- per-process worker state
_WORKER: dict = {}


def _init_worker(landmarker: str, arcface: str, smirk: str | None) -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    from retarget.face.identity import ArcFaceEncoder, IdentityEmbedder
    from retarget.face.landmarker import FaceLandmarker

    lm = FaceLandmarker(landmarker, mode="image")
    _WORKER["landmarker"] = lm
    _WORKER["embedder"] = IdentityEmbedder(ArcFaceEncoder(arcface), lm)
    _WORKER["smirk"] = None
    if smirk:
        from retarget.face.smirk import SmirkExtractor

        _WORKER["smirk"] = SmirkExtractor(smirk, device="cpu")


def _frames(path: Path, every: int, max_frames: int | None):
    """(frame index, RGB image) of an image (index 0) or every `every`-th video frame."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        from retarget.face.image_io import load_image

        yield 0, load_image(path)
        return
    from retarget.media.sources import VideoFileSource

    kept = 0
    with VideoFileSource(path) as source:
        for frame in source:
            if frame.index % every:
                continue
            yield frame.index, frame.image
            kept += 1
            if max_frames is not None and kept >= max_frames:
                break


def annotate_face(image: np.ndarray):
    """(aligned crop, blendshapes, arcface, flame or None), or None when no face is found."""
    from retarget.face.align import align_ffhq

    landmarker, embedder, smirk = _WORKER["landmarker"], _WORKER["embedder"], _WORKER["smirk"]
    observation = landmarker.detect(image)
    if observation is None:
        return None
    aligned, _ = align_ffhq(image, observation.landmarks, size=CROP_SIZE)
    aligned_observation = landmarker.detect(aligned)
    # As Retargeter.identity_from_image: embed the aligned crop, the original when it cannot be re-detected.
    if aligned_observation is not None:
        arcface = embedder.embed_with_landmarks(aligned, aligned_observation.landmarks)
    else:
        arcface = embedder.embed_with_landmarks(image, observation.landmarks)
    flame = smirk.encode(image, observation.landmarks) if smirk is not None else None
    return aligned, observation.blendshapes, arcface, flame


def process_source(task: tuple) -> dict:
    """Annotate one source into DATA; returns its manifest records (written by the main process)."""
    from PIL import Image

    path, out, every, max_frames = task
    path, out = Path(path), Path(out)
    clip = clip_id(path)
    kind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
    crops_dir = out / "crops" / clip
    rows = {"blendshapes": [], "arcface": [], "flame": [], "frames": []}
    samples, skipped, error = [], 0, None
    try:
        for index, image in _frames(path, every, max_frames):
            result = annotate_face(image)
            if result is None:
                skipped += 1
                continue
            aligned, blendshapes, arcface, flame = result
            crops_dir.mkdir(parents=True, exist_ok=True)
            crop = crops_dir / f"{index:06d}.png"
            Image.fromarray(aligned).save(crop, compress_level=1)
            row = len(rows["frames"])
            rows["blendshapes"].append(blendshapes)
            rows["arcface"].append(arcface)
            rows["frames"].append(index)
            if flame is not None:
                rows["flame"].append(flame)
            samples.append({"type": "sample", "id": f"{clip}/{index:06d}", "source": str(path), "clip": clip,
                            "frame": index, "shard": f"shards/{clip}.npz", "row": row,
                            "crop": str(crop.relative_to(out))})
    except RetargetError as err:  # unreadable file: recorded (and counted), not retried
        error = str(err)
    shard = None
    if samples:
        shard = f"shards/{clip}.npz"
        arrays = {"blendshapes": np.asarray(rows["blendshapes"], np.float32),
                  "arcface": np.asarray(rows["arcface"], np.float32),
                  "frames": np.asarray(rows["frames"], np.int64)}
        if rows["flame"]:
            arrays["flame"] = np.asarray(rows["flame"], np.float32)
        atomic_write(out / shard, lambda temp: np.savez(temp, **arrays))
    record = {"type": "source", "source": str(path), "clip": clip, "kind": kind, "samples": len(samples),
              "skipped": skipped, "shard": shard}
    if error:
        record["error"] = error
    return {"samples": samples, "source": record}


def _append(manifest: Path, result: dict) -> None:
    lines = [json.dumps(r) for r in result["samples"]] + [json.dumps(result["source"])]
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _claim_dataset_folder(out: Path, inputs) -> None:
    """--out is a new folder, an empty one, or a dataset annotate made (a rerun continues it); never a foreign folder."""
    from retarget.outputs import check_output, check_writable, claim_folder, is_ours, mark

    check_output(out, inputs)
    check_writable(out)
    if (out / MANIFEST).is_file() and not is_ours(out):
        mark(out)  # a dataset written before folders carried the marker
    claim_folder(out)


def run(args: argparse.Namespace) -> dict:
    from tqdm.auto import tqdm

    from retarget.weights.assets import resolve_models
    from retarget.face.landmarker import landmarker_for

    if args.every < 1:
        raise RetargetError(f"--every must be at least 1 (got {args.every})")
    if args.workers < 1:
        raise RetargetError(f"--workers must be at least 1 (got {args.workers})")
    sources = collect_sources(args.sources)
    models = from_args(ModelOptions, args)
    _claim_dataset_folder(args.out, [*(("a source", p) for p in args.sources), ("--landmarker", models.landmarker),
                                     ("--smirk", models.smirk)])
    files = resolve_models(models.models, progress=lambda line: print(line, file=sys.stderr))
    landmarker = landmarker_for(models.landmarker, files)
    smirk = models.smirk
    if smirk is not None and not Path(smirk).is_file():
        raise RetargetError(f"--smirk {smirk}: no such file")
    out: Path = args.out
    manifest = out / MANIFEST
    _, done = read_manifest(out)
    todo = [p for p in sources if str(p) not in done]
    summary = {"new_samples": 0, "skipped": 0, "sources": len(todo), "already_done": len(sources) - len(todo), "errors": 0}
    tasks = [(str(p), str(out), args.every, args.max_frames) for p in todo]
    init = (str(landmarker), str(files.arcface), str(smirk) if smirk else None)
    bar = tqdm(total=len(tasks), desc="annotating", unit="source", disable=not tasks)

    def collect(result: dict) -> None:
        _append(manifest, result)
        summary["new_samples"] += result["source"]["samples"]
        summary["skipped"] += result["source"]["skipped"]
        summary["errors"] += "error" in result["source"]
        if "error" in result["source"]:
            tqdm.write(f"skipped {result['source']['source']}: {result['source']['error']}", file=sys.stderr)
        bar.update(1)
        bar.set_postfix(samples=summary["new_samples"], skipped=summary["skipped"])

    try:
        if args.workers == 1 or len(tasks) <= 1:
            if tasks:
                _init_worker(*init)
                try:
                    for task in tasks:
                        collect(process_source(task))
                finally:
                    _WORKER["landmarker"].close()
        else:
            import multiprocessing as mp

            # spawn: MediaPipe and torch do not survive fork() reliably
            with mp.get_context("spawn").Pool(min(args.workers, len(tasks)), initializer=_init_worker, initargs=init) as pool:
                for result in pool.imap_unordered(process_source, tasks):
                    collect(result)
    finally:
        bar.close()
    samples, done = read_manifest(out)
    summary["total_samples"], summary["total_sources"] = len(samples), len(done)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("annotate", lambda: _annotate(args),
                       interrupted="interrupted (finished sources are kept; run again to continue)")


def _annotate(args) -> int:
    summary = run(args)
    print(f"annotated {summary['sources']} new source(s): {summary['new_samples']} samples, "
          f"{summary['skipped']} skipped (no face), {summary['errors']} unreadable; "
          f"{summary['already_done']} source(s) already done; dataset: {summary['total_samples']} samples "
          f"from {summary['total_sources']} sources in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
