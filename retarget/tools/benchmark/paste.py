"""`retarget bench paste`: the per-frame cost of full-frame output (warp the generated face back + blend) by photo size.

The face fills the same share of every photo (its FFHQ square is half the photo's height, as in a portrait), so a
larger photo means a larger face: from about 0.5x the 512 px crop at 640x480 to 2x at 3840x2160. Timings do not
depend on the pixels' values, so the photo and the face are random.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

SIZES = ((640, 480), (1280, 720), (1920, 1080), (2560, 1440), (3840, 2160))


def _placement(width: int, height: int, rng):
    from retarget.face.paste import FacePlacement

    photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    side = height / 2.0  # the FFHQ square's side in photo pixels
    scale = 512 / side
    angle = np.radians(8.0)  # a slightly tilted head, as most photos have
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    cx, cy = width * 0.55, height * 0.5
    matrix = np.array([[a, b, 256 - 0.5 - (a * cx + b * cy)], [-b, a, 256 - 0.5 - (-b * cx + a * cy)]])
    return FacePlacement(photo, matrix)


def benchmark_paste(sizes=SIZES, frames: int = 20, batch: int = 4) -> list[dict]:
    """Median milliseconds per pasted frame (wall, and CPU time of all threads) for one frame at a time (live), and per
    frame of a batch (offline, wall); setup: building the placement once per identity."""
    import cv2

    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    rows = []
    for width, height in sizes:
        started = time.perf_counter()
        placement = _placement(width, height, rng)
        setup_ms = (time.perf_counter() - started) * 1000
        placement.paste(face)  # warm-up
        single = []
        cpu_started = time.process_time()
        for _ in range(frames):
            started = time.perf_counter()
            placement.paste(face)
            single.append((time.perf_counter() - started) * 1000)
        # CPU time (all threads) as well as wall time: on a shared, loaded machine the wall time mostly measures waiting.
        cpu_ms = (time.process_time() - cpu_started) * 1000 / frames
        faces = np.stack([face] * batch)
        started = time.perf_counter()
        for _ in range(max(1, frames // batch)):
            placement.paste_batch(faces)
        per_frame_batched = (time.perf_counter() - started) * 1000 / (max(1, frames // batch) * batch)
        x0, y0, x1, y1 = placement.roi
        rows.append({"photo": f"{width}x{height}", "face_px": round(height / 2), "upsampling": round(placement.upsampling(), 2),
                     "blend_region": f"{x1 - x0}x{y1 - y0}", "ms_per_frame": round(float(np.median(single)), 2), "cpu_ms_per_frame": round(cpu_ms, 2),
                     "ms_per_frame_batched": round(per_frame_batched, 2), "setup_ms": round(setup_ms, 1)})
    rows.append({"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "cpus": os.cpu_count(),
                 "opencv_threads": cv2.getNumThreads()})
    return rows


def print_paste_benchmark(rows: list[dict]) -> None:
    *table, machine = rows
    print(f"paste-back (warp + blend) per frame on {machine['machine']}, {machine['cpus']} CPUs "
          f"(OpenCV threads {machine['opencv_threads']}):")
    print(f"{'photo':>10} {'face px':>8} {'upsampled':>9} {'blend region':>13} {'ms/frame':>9} {'CPU ms':>7} "
          f"{'batched':>8} {'setup ms':>9}")
    for row in table:
        print(f"{row['photo']:>10} {row['face_px']:>8} {row['upsampling']:>8}x {row['blend_region']:>13} "
              f"{row['ms_per_frame']:>9.1f} {row['cpu_ms_per_frame']:>7.1f} {row['ms_per_frame_batched']:>8.1f} "
              f"{row['setup_ms']:>9.1f}")
