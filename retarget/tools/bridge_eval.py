"""`retarget bridge eval`: the blendshape round trip through the generator, bridge path next to SMIRK path.

On held-out driver frames (the last 20% of each video's frames with a face: the block the fit
never trains on when fitted from the same videos), with the driver's blendshapes b:
  bridge path: b -> bridge -> FLAME -> render -> MediaPipe -> b'
  SMIRK path:  the frame -> SMIRK -> FLAME -> render -> MediaPipe -> b'
Both render the same identity with the same noise. The measure is mean |b - b'| per face region
(REGIONS) and over all 51 facial blendshapes (MediaPipe's `_neutral` score left out), over the
frames whose render MediaPipe finds a face in; renders without a face are counted per path, never
dropped silently (random test models render noise: every render is counted as no face).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from retarget.config.mapping import NEUTRAL_INDEX, REGIONS
from retarget.config.models import ModelOptions
from retarget.errors import BadInputError, JobInterrupted
from retarget.names.blendshapes import BLENDSHAPE_NAMES

_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
REGION_INDICES = {region: [_INDEX[n] for n in names] for region, names in REGIONS.items()}
REGION_INDICES["all"] = [i for i in range(len(BLENDSHAPE_NAMES)) if i != NEUTRAL_INDEX]
PATHS = ("bridge", "smirk")


def held_out_frames(videos, landmarker_path, limit: int, smirk, progress=None, cancel=None):
    """(images, blendshapes (N, 52), SMIRK FLAME (N, 55)) of up to `limit` held-out frames, evenly spread."""
    from retarget.expression.bridge_fit import tail_split
    from retarget.face.landmarker import FaceLandmarker
    from retarget.media.sources import open_source

    found = []  # (video number, image, blendshapes, landmarks)
    for number, video in enumerate(videos):
        with open_source(str(video)) as source, FaceLandmarker(landmarker_path, mode="video") as landmarker:
            last_ms = -1
            for frame in source:
                if cancel is not None and cancel():
                    raise JobInterrupted("evaluation cancelled")
                if frame.image is None:
                    raise BadInputError(f"{video}: a blendshape recording has no pictures; give a video of a face")
                last_ms = max(int(round(frame.time * 1000.0)), last_ms + 1)
                observation = landmarker.detect(frame.image, timestamp_ms=last_ms)
                if observation is not None:
                    found.append((number, frame.image, observation.blendshapes, observation.landmarks))
                if progress is not None:
                    progress(frame.index + 1, source.frame_count)
    if not found:
        raise BadInputError("no face found in any frame of the --videos; give videos of a face")
    held = np.flatnonzero(tail_split(np.array([item[0] for item in found])))
    if len(held) == 0:
        raise BadInputError("too few frames with a face to hold any out; give a longer video")
    chosen = held[np.unique(np.linspace(0, len(held) - 1, num=min(limit, len(held))).round().astype(int))]
    images = [found[i][1] for i in chosen]
    blendshapes = np.array([found[i][2] for i in chosen], dtype=np.float32)
    flame = np.array([smirk.encode(found[i][1], found[i][3]) for i in chosen], dtype=np.float32)
    return images, blendshapes, flame


def region_errors(target: np.ndarray, seen: np.ndarray, found: np.ndarray) -> dict[str, float | None]:
    """Mean |b - b'| per region over the rows whose render had a face (None when none had)."""
    if not found.any():
        return {region: None for region in REGION_INDICES}
    diff = np.abs(target[found] - seen[found])
    return {region: float(diff[:, idx].mean()) for region, idx in REGION_INDICES.items()}


def round_trip(pipeline, context, landmarker, target_blendshapes, flame_batches: dict, settings, batch_size: int = 4,
               progress=None, cancel=None) -> dict:
    """For each path name -> (N, 55) FLAME: render, MediaPipe on each render, errors against target_blendshapes."""
    results = {}
    total = sum(len(v) for v in flame_batches.values())
    done = 0
    for name, flame in flame_batches.items():
        seen = np.zeros_like(target_blendshapes)
        found = np.zeros(len(flame), dtype=bool)
        for start in range(0, len(flame), batch_size):
            if cancel is not None and cancel():
                raise JobInterrupted("evaluation cancelled")
            chunk = flame[start:start + batch_size]
            images = pipeline.generate(context, chunk, settings, frame_indices=list(range(start, start + len(chunk))))
            for offset, image in enumerate(images):
                observation = landmarker.detect(np.ascontiguousarray(image))
                if observation is not None:
                    seen[start + offset], found[start + offset] = observation.blendshapes, True
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        results[name] = {"renders": int(len(flame)), "faces_found": int(found.sum()), "no_face": int((~found).sum()),
                         "mean_abs_error": region_errors(target_blendshapes, seen, found)}
    return results


def format_eval(result: dict) -> str:
    lines = [f"{result['frames']} held-out driver frames; mean |b - b'| per region (lower is better)",
             f"{'region':<9}" + "".join(f"{name:>10}" for name in PATHS)]
    for region in REGION_INDICES:
        cells = []
        for name in PATHS:
            value = result[name]["mean_abs_error"][region]
            cells.append(f"{'n/a' if value is None else f'{value:.4f}':>10}")
        lines.append(f"{region:<9}" + "".join(cells))
    for name in PATHS:
        part = result[name]
        lines.append(f"{name}: MediaPipe found a face in {part['faces_found']} of {part['renders']} renders "
                     f"({part['no_face']} without a face{', not scored' if part['no_face'] else ''})")
    return "\n".join(lines)


def evaluate_bridge(videos, options: ModelOptions | None = None, *, identity=None, frames: int = 24, settings=None, seed: int = 0, batch_size: int = 4,
                    progress=None, cancel=None) -> dict:
    """The round trip on held-out frames of `videos`, bridge path and SMIRK path; returns the result dict (format_eval)."""
    from retarget.tools.bridge_jobs import flame_adapter_of, model_files
    from retarget.expression.bridge import ExpressionBridge, adapter_sha256, find_bridge, missing_bridge_message
    from retarget.expression.flame_prior import random_identities
    from retarget.session.retargeter import Retargeter

    if frames < 1 or batch_size < 1:
        raise BadInputError(f"--frames and --batch-size must be at least 1 (got {frames}, {batch_size})")
    options = options if options is not None else ModelOptions()
    files = model_files(options.models)
    adapter = flame_adapter_of(files, options.exp_adapter)
    path = find_bridge(adapter, options.bridge)
    if path is None:
        raise BadInputError(missing_bridge_message("retarget bridge eval"))
    loaded = ExpressionBridge.load(path, adapter_sha256=adapter_sha256(adapter))
    with Retargeter(files, replace(options, exp_adapter=adapter), use_reference=identity is not None) as retargeter:
        images, target, smirk_flame = held_out_frames(videos, retargeter.landmarker_path, frames, retargeter.smirk,
                                                      progress=progress, cancel=cancel)
        if identity is not None:
            from retarget.face.image_io import load_image

            context = retargeter.identity_from_image(load_image(identity), source=str(identity))
        else:
            context = retargeter.pipeline.prepare_identity(random_identities(1, np.random.default_rng(seed)))

        from retarget.config.generation import GenerationSettings

        settings = replace(settings or GenerationSettings(), seed=seed)
        result = round_trip(retargeter.pipeline, context, retargeter.landmarker, target,
                            {"bridge": loaded(target), "smirk": smirk_flame}, settings, batch_size, progress, cancel)
    return {"frames": len(images), "videos": [str(v) for v in videos], "bridge_file": str(path),
            "identity": str(identity) if identity is not None else f"random ArcFace vector (seed {seed})",
            "regions": {region: list(names) for region, names in REGIONS.items()}, **result}
