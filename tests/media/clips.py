"""Small media made here with PyAV for the media tests: frames whose brightness encodes their index, clips, audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(index: int, w: int = 64, h: int = 48) -> np.ndarray:
    """A frame whose mean brightness encodes its index (survives lossy coding) plus a gradient."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (index * 8) % 256
    img[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    return img


def write_clip(path: Path, n: int = 20, *, w: int = 64, h: int = 48, rate=25, pts=None, time_base=None,
               rotation: int | None = None, frames=None) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if time_base is not None:
            stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(n):
            image = frames[i] if frames is not None else pattern(i, w, h)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts[i] if pts is not None else i
            if time_base is not None:
                frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_audio(path: Path, seconds: float = 1.0, codec: str = "aac", rate: int = 44100) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        fmt = "fltp" if codec == "aac" else "s16"
        size = stream.codec_context.frame_size or 1024
        total = int(seconds * rate)
        t = np.arange(total) / rate
        wave = np.sin(2 * np.pi * 440 * t)
        for start in range(0, total, size):
            chunk = wave[start : start + size]
            data = chunk.astype(np.float32) if fmt == "fltp" else (chunk * 10000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        info = {"streams": [s.type for s in c.streams]}
        if c.streams.audio:
            a = c.streams.audio[0]
            info["audio_codec"] = a.codec_context.name
            info["audio_seconds"] = float(a.duration * a.time_base)
        v = c.streams.video[0]
        info["rate"] = v.average_rate
        info["frames"] = sum(1 for _ in c.decode(v))
    return info


def index_of(image: np.ndarray) -> int:
    return int(round(float(image[..., 0].mean()) / 8))
