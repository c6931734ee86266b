"""The (52 blendshapes, 55 FLAME) pairs a bridge is fitted on, from videos or from the generator's own renders.

- `video_pairs`: MediaPipe and SMIRK on the same frames of videos (or webcam recordings).
- `synthesis_pairs`: analysis by synthesis, no video and no SMIRK: FLAME vectors from a prior and
  random identities -> a renderer (the generator, or a stand-in in tests) -> MediaPipe's
  blendshapes of each render. Renders in batches kept in a work folder (one .npz per batch,
  deterministic per batch index), so a stopped run continues where it was. Renders where MediaPipe
  finds no face are counted (faces_missed), never hidden, and give no pair.
progress(done, total) is called as work advances (total None when unknown); cancel() -> True stops
with JobInterrupted (synthesis batches already written are kept).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from retarget.errors import BadInputError, JobInterrupted
from retarget.names.blendshapes import NUM_BLENDSHAPES
from retarget.expression.bridge_fit import BridgePairs
from retarget.expression.flame import NUM_FLAME
from retarget.expression.flame_prior import FlamePrior, random_identities

Progress = Callable[[int, "int | None"], None]
Cancel = Callable[[], bool]
WORK_FORMAT = "retarget-bridge-renders/1"
CANCELLED = "calibration cancelled"


@dataclass
class GatheredPairs:
    pairs: BridgePairs
    faces_missed: int  # frames / renders where MediaPipe found no face
    looked_at: int  # frames / renders examined
    files: list[str] = field(default_factory=list)
    seconds_per_1000: float | None = None  # renders only: this run's time per 1,000 samples
    rendered_now: int = 0  # renders made by this run (the rest came from the work folder)


def _check_cancel(cancel: Cancel | None, message: str = CANCELLED) -> None:
    if cancel is not None and cancel():
        raise JobInterrupted(message)


def video_pairs(videos, landmarker_path, smirk, every: int = 1, max_frames: int | None = None,
                progress: Progress | None = None, cancel: Cancel | None = None) -> GatheredPairs:
    """MediaPipe's blendshapes and SMIRK's FLAME values of the largest face, frame by frame (every `every`-th).

    smirk: a SmirkExtractor (or anything with encode(image, landmarks) -> (55,)).
    """
    from retarget.face.landmarker import FaceLandmarker
    from retarget.names.kinds import is_webcam_spec
    from retarget.media.sources import open_source

    if every < 1:
        raise BadInputError(f"--every must be at least 1 (got {every})")
    for video in videos:
        if is_webcam_spec(str(video)):
            raise BadInputError(f"{video}: record the webcam to a file first (the app's Record, or any recorder), then fit from it")
    total = _total_frames(videos)  # every file is probed before any work
    rows_b, rows_f, groups, missed, looked, offset = [], [], [], 0, 0, 0
    for number, video in enumerate(videos):
        with open_source(str(video)) as source, FaceLandmarker(landmarker_path, mode="video") as landmarker:
            kept, last_ms = 0, -1
            for frame in source:
                _check_cancel(cancel)
                if frame.image is None:
                    raise BadInputError(f"{video}: a blendshape recording has no pictures for SMIRK; give a video of a face")
                if frame.index % every == 0:
                    last_ms = max(int(round(frame.time * 1000.0)), last_ms + 1)
                    observation = landmarker.detect(frame.image, timestamp_ms=last_ms)
                    looked += 1
                    if observation is None:
                        missed += 1
                    else:
                        rows_b.append(observation.blendshapes)
                        rows_f.append(smirk.encode(frame.image, observation.landmarks))
                        groups.append(number)
                        kept += 1
                if progress is not None:
                    progress(offset + frame.index + 1, total)
                if max_frames is not None and kept >= max_frames:
                    break
            if source.decode_error and not kept:
                raise BadInputError(f"{video}: {source.decode_error}")
            offset += source.frame_count or 0
    pairs = BridgePairs(np.asarray(rows_b, np.float32).reshape(-1, NUM_BLENDSHAPES),
                        np.asarray(rows_f, np.float32).reshape(-1, NUM_FLAME), np.asarray(groups, np.int64))
    return GatheredPairs(pairs, missed, looked, [str(v) for v in videos])


def _total_frames(videos) -> int | None:
    """All the videos' frames together (None when a source cannot say), for one progress bar over them all."""
    from retarget.media.sources import open_source

    counts = []
    for video in videos:
        with open_source(str(video)) as source:
            counts.append(source.frame_count)
    return None if any(count is None for count in counts) else sum(counts)


# ---------------------------------------------------------------- synthesis (renders)
Renderer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (identities, flame, sample indices) -> images


def generator_renderer(pipeline, settings=None) -> Renderer:
    """Renders through the generator's public calls: one identity context per batch (random ArcFace vectors, no
    reference photo), per-sample noise keyed by the sample index (a resumed batch renders the same pictures)."""
    from dataclasses import replace

    from retarget.config.generation import GenerationSettings

    settings = replace(settings or GenerationSettings(), per_frame_noise=True)

    def render(identities, flame, indices):
        context = pipeline.prepare_identity(identities)
        return pipeline.generate(context, flame, settings, frame_indices=[int(i) for i in indices])

    return render


class RenderWork:
    """A work folder of synthesis batches: job.json (what they are) and batch_NNNNNN.npz (written atomically)."""

    def __init__(self, folder, job: dict):
        from retarget.outputs import claim_folder, write_json

        self.folder = Path(folder)
        job = {"format": WORK_FORMAT, **job}
        manifest = self.folder / "job.json"
        if manifest.is_file():
            try:
                saved = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                saved = None
            if saved != job:
                raise BadInputError(f"{self.folder} holds renders of another calibration (other adapter, prior, seed or "
                                    f"batch size); give another --work folder, or delete that one to start over")
        else:
            claim_folder(self.folder, "--work")
            write_json(manifest, job)
        self.job = job

    def batch_path(self, index: int) -> Path:
        return self.folder / f"batch_{index:06d}.npz"

    def load(self, index: int) -> dict | None:
        path = self.batch_path(index)
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return {key: data[key] for key in ("flame", "blendshapes", "found")}
        except (OSError, ValueError, KeyError):
            return None  # a damaged batch is rendered again

    def save(self, index: int, batch: dict) -> None:
        from retarget.outputs import atomic_write

        atomic_write(self.batch_path(index), lambda temp: np.savez(str(temp), **batch))  # temp ends in .npz


def _blendshapes_of(landmarker, images) -> tuple[np.ndarray, np.ndarray]:
    rows, found = np.zeros((len(images), NUM_BLENDSHAPES), np.float32), np.zeros(len(images), bool)
    for i, image in enumerate(images):
        observation = landmarker.detect(np.ascontiguousarray(image))
        if observation is not None:
            rows[i], found[i] = observation.blendshapes, True
    return rows, found


def synthesis_pairs(render: Renderer, landmarker_path, samples: int, work_folder, adapter_sha256: str,
                    prior: FlamePrior | None = None, batch_size: int = 8, seed: int = 0,
                    progress: Progress | None = None, cancel: Cancel | None = None, job: dict | None = None) -> GatheredPairs:
    """`samples` renders (in batches, resumable from work_folder) -> pairs of (MediaPipe on the render, the FLAME rendered).

    job: more of what the renders depend on (e.g. the generation settings), so a work folder is only continued
    by the same kind of renders.
    """
    from retarget.face.landmarker import FaceLandmarker

    if samples < 1 or batch_size < 1:
        raise BadInputError(f"--renders and --batch-size must be at least 1 (got {samples}, {batch_size})")
    prior = prior or FlamePrior.default()
    work = RenderWork(work_folder, {"adapter_sha256": adapter_sha256, "prior": prior.description, "seed": int(seed),
                                    "batch_size": int(batch_size), **(job or {})})
    batches = -(-samples // batch_size)
    rows_b, rows_f, missed, looked, rendered, seconds = [], [], 0, 0, 0, 0.0
    with FaceLandmarker(landmarker_path, mode="image") as landmarker:
        for index in range(batches):
            _check_cancel(cancel, f"{CANCELLED}; the renders so far are kept in {work.folder} (run again to continue)")
            batch = work.load(index)
            if batch is None:
                started = time.perf_counter()
                rng = np.random.default_rng([int(seed), index])
                flame = prior.sample(batch_size, rng)
                identities = random_identities(batch_size, rng)
                images = render(identities, flame, np.arange(index * batch_size, (index + 1) * batch_size))  # (B, H, W, 3) or a list
                blendshapes, found = _blendshapes_of(landmarker, images)
                batch = {"flame": flame, "blendshapes": blendshapes, "found": found}
                work.save(index, batch)
                seconds += time.perf_counter() - started
                rendered += batch_size
            take = min(batch_size, samples - index * batch_size)
            found = batch["found"][:take]
            looked += take
            missed += int((~found).sum())
            rows_b.extend(batch["blendshapes"][:take][found])
            rows_f.extend(batch["flame"][:take][found])
            if progress is not None:
                progress(min(samples, (index + 1) * batch_size), samples)
    pairs = BridgePairs(np.asarray(rows_b, np.float32).reshape(-1, NUM_BLENDSHAPES),
                        np.asarray(rows_f, np.float32).reshape(-1, NUM_FLAME), np.zeros(len(rows_b), np.int64))
    per_1000 = round(seconds / rendered * 1000.0, 1) if rendered else None
    return GatheredPairs(pairs, missed, looked, seconds_per_1000=per_1000, rendered_now=rendered)
