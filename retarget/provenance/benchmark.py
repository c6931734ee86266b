"""The watermark's cost and reliability, printed (nothing asserted): `python -m retarget.provenance.benchmark [MEDIA]`.

- quality: PSNR of marked vs unmarked frames (target >= 40 dB) at 512x512 and at full photo sizes
- time: ms per frame to mark (the first frame of a size builds its pattern; later frames reuse it) and to detect
- robustness: the detection score after H.264 (CRF 18, 30), a resize to half and JPEG q75 (marked when >= 6)
- false positives: the score on every unmarked picture and every 3rd video frame of MEDIA (default ../shared/media)
"""

from __future__ import annotations

import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from retarget import __version__
from retarget.provenance.watermark import DETECT_Z, detect, embed


def _load(path: Path, size: int | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        return np.asarray(im.resize((size, size), Image.LANCZOS) if size else im)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / mse) if mse > 0 else float("inf")


def _ms(fn, repeat: int = 10) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def h264_round_trip(rgb: np.ndarray, crf: int, frames: int = 3) -> np.ndarray:
    """Through libx264 (yuv420p, preset medium) and back: the last decoded frame (a P/B frame)."""
    import av

    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "medium"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for _ in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(io.BytesIO(buf.getvalue())) as c:
        return list(c.decode(video=0))[-1].to_ndarray(format="rgb24")


def jpeg_round_trip(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def half_size(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((rgb.shape[1] // 2, rgb.shape[0] // 2), Image.BILINEAR))


ATTACKS = {"h264 crf18": lambda x: h264_round_trip(x, 18), "h264 crf30": lambda x: h264_round_trip(x, 30),
           "half size": half_size, "jpeg q75": jpeg_round_trip}


def _unmarked(media: Path):
    import av

    for path in sorted(media.iterdir()):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            yield path.name, _load(path)
            yield path.name + "@512", _load(path, 512)
        elif path.suffix.lower() == ".mp4":
            with av.open(str(path)) as c:
                for i, frame in enumerate(c.decode(video=0)):
                    if i % 3 == 0:
                        yield f"{path.name}#{i}", frame.to_ndarray(format="rgb24")


def run(media: Path) -> None:
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, {platform.system()}; "
          f"python {platform.python_version()}; watermark payload retarget {__version__}")
    photos = [p for p in (media / "identity_freeman.jpg", media / "identity_jackie_wide.png", media / "identity_painting_s9.jpg")
              if p.is_file()]
    stand_ins = [(f"{p.name} at 512x512", _load(p, 512)) for p in photos] + [(f"{p.name} full", _load(p)) for p in photos]
    if not stand_ins:
        rng = np.random.default_rng(0)
        stand_ins = [("random 512x512", rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))]
    print(f"\n{'picture':34s} {'size':>10s} {'PSNR dB':>8s} {'first ms':>9s} {'mark ms':>8s} {'detect ms':>9s}  "
          + "  ".join(f"{a:>10s}" for a in ATTACKS))
    for name, image in stand_ins:
        from retarget.provenance.watermark import _delta

        _delta.cache_clear()
        start = time.perf_counter()
        marked = embed(image, __version__)
        first = 1000 * (time.perf_counter() - start)
        mark_ms = _ms(lambda: embed(image, __version__))
        detect_ms = _ms(lambda: detect(marked), repeat=5)
        scores = [detect(attack(marked)).score for attack in ATTACKS.values()]
        size = f"{image.shape[1]}x{image.shape[0]}"
        print(f"{name:34s} {size:>10s} {psnr(image, marked):8.1f} {first:9.1f} {mark_ms:8.1f} {detect_ms:9.1f}  "
              + "  ".join(f"{s:10.1f}" for s in scores))
    print(f"(scores: marked when >= {DETECT_Z}; an unmarked picture scores like a standard normal variable)")
    if media.is_dir():
        scores = [(name, detect(image).score) for name, image in _unmarked(media)]
        values = np.array([s for _, s in scores])
        worst = max(scores, key=lambda kv: abs(kv[1]))
        print(f"\nunmarked pictures of {media}: {len(values)}; found marked: {int(np.sum(values >= DETECT_Z))} "
              f"(false-positive rate {np.mean(values >= DETECT_Z):.3f}); score mean {values.mean():.2f}, std {values.std():.2f}, "
              f"largest |score| {abs(worst[1]):.2f} ({worst[0]})")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    media = Path(argv[0]) if argv else Path(__file__).resolve().parents[3] / "shared" / "media"
    run(media)
    return 0


if __name__ == "__main__":
    sys.exit(main())
