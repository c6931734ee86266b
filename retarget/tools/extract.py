"""`retarget extract` (a video's blendshapes to CSV) and the perception benchmark.

Both use the engine's own perception path (decode thread + landmarker/mapping thread), so the
CSV holds exactly what the generator would be driven by, and the benchmark measures what the
engine runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from retarget.engine.driving import DriverAnalyzer
from retarget.engine import perception_stream, work_lock_for
from retarget.errors import BadInputError
from retarget.config.mapping import MappingSettings
from retarget.face.landmarker import find_landmarker_model
from retarget.media.live_link_face import LiveLinkFaceWriter, nominal_rate_for
from retarget.media.blendshape_csv import BlendshapeCsvWriter
from retarget.media.sources import VideoFileSource, open_source
from retarget.outputs import check_file_output


@dataclass
class ExtractSummary:
    frames: int
    frames_without_face: int
    seconds: float


def _raw_analyzer(landmarker: Path | None, mapping: MappingSettings | None = None) -> DriverAnalyzer:
    # Raw blendshapes: no smoothing, gains or mirroring, so a CSV replays through any mapping later.
    raw = mapping or MappingSettings(smoothing=False)
    return DriverAnalyzer("blendshapes52", find_landmarker_model(landmarker), raw)


CSV_FORMATS = ("retarget", "livelinkface")  # ours (`timestamp` + the 52 MediaPipe names), or Live Link Face's


def csv_writer(out: Path, format: str, fps: float):
    """The writer of an extracted take: ours, or a Live Link Face take timecoded at the video's rate."""
    if format == "retarget":
        return BlendshapeCsvWriter(out)
    if format == "livelinkface":
        return LiveLinkFaceWriter(out, *nominal_rate_for(fps))
    raise BadInputError(f"--format {format}: use one of {', '.join(CSV_FORMATS)}")


def extract_blendshapes(video: Path, out: Path, landmarker: Path | None = None, progress: bool = True,
                        format: str = "retarget") -> ExtractSummary:
    from tqdm.auto import tqdm

    check_file_output(out, [("the video", video), ("--landmarker", landmarker)])
    if Path(out).suffix.lower() != ".csv":
        raise BadInputError(f"--out {out}: use a .csv name")
    if format not in CSV_FORMATS:
        raise BadInputError(f"--format {format}: use one of {', '.join(CSV_FORMATS)}")
    source = open_source(str(video))
    if not isinstance(source, VideoFileSource):
        source.close()
        raise BadInputError(f"{video}: extract reads video files")
    started = time.perf_counter()
    frames = 0
    lock = work_lock_for(out)  # one writer per CSV (the job lock renders take): a second extract to it is refused
    try:
        lock.__enter__()
        writer = csv_writer(out, format, float(source.frame_rate or source.fps))
    except BaseException:
        source.close()
        lock.__exit__(None, None, None)
        raise
    try:
        with source, _raw_analyzer(landmarker) as analyzer, tqdm(total=source.frame_count, unit="frame", disable=not progress) as bar:
            for driven in perception_stream(source, analyzer):
                writer.write(driven.time, driven.blendshapes if driven.face_found else None)
                frames += 1
                bar.update(1)
            missing = analyzer.frames_without_face
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        lock.__exit__(None, None, None)
    return ExtractSummary(frames, missing, time.perf_counter() - started)


def benchmark_perception(video: Path, landmarker: Path | None = None, repeat: int = 2) -> str:
    """Frames/s of decode + MediaPipe landmarks/blendshapes + mapping (smoothing on), best of `repeat` runs."""
    import os
    import platform

    best = None
    frames = 0
    for _ in range(max(1, repeat)):
        source = open_source(str(video))
        with source, _raw_analyzer(landmarker, MappingSettings()) as analyzer:
            started = time.perf_counter()
            frames = sum(1 for _ in perception_stream(source, analyzer))
            seconds = time.perf_counter() - started
        best = seconds if best is None else min(best, seconds)
    decode_started = time.perf_counter()
    with open_source(str(video)) as source:
        decoded = sum(1 for _ in source)
    decode_seconds = time.perf_counter() - decode_started
    return (
        f"perception benchmark on {Path(video).name}: {frames} frames\n"
        f"  decode only:                      {decoded / decode_seconds:7.1f} frames/s\n"
        f"  decode + landmarks + mapping:     {frames / best:7.1f} frames/s (best of {max(1, repeat)})\n"
        f"  machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"
    )
