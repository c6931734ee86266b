"""`retarget verify FILE...`: whether each file carries retarget's marks: the invisible watermark (per sampled
frame of a video), the AI-generated metadata and the C2PA manifest; one report line per file."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retarget.errors import OneLineArgumentParser, BadInputError, RetargetError, user_message
from retarget.media.frame_source import DEFAULT_FPS
from retarget.names.kinds import media_kind
from retarget.provenance import c2pa_manifest, metadata
from retarget.provenance.watermark import DETECT_Z, Detection, detect, detect_frames

DEFAULT_SAMPLES = 12  # frames read from a video, spread evenly


@dataclass
class FileReport:
    path: Path
    detections: list[Detection] = field(default_factory=list)  # one per sampled frame (one for a still)
    video: bool = False
    tags: dict = field(default_factory=dict)
    manifest: dict | None = None
    combined: Detection | None = None  # a video: all sampled frames together (watermark.detect_frames)

    @property
    def frames_marked(self) -> int:
        return sum(d.found for d in self.detections)

    @property
    def marked(self) -> bool:
        """The watermark is the mark that survives re-encoding: it decides; metadata and manifest are reported."""
        return self.frames_marked > 0 or (self.combined is not None and self.combined.found)

    def line(self) -> str:
        found = [d for d in self.detections if d.found] + ([self.combined] if self.combined and self.combined.found else [])
        best = max((d.score for d in self.detections), default=0.0)
        if self.video:
            mark = (f"watermark in {self.frames_marked} of {len(self.detections)} sampled frames, "
                    f"all together score {self.combined.score:.1f}")
        else:
            mark = "watermark found" if found else "no watermark"
        if found:
            mark += f" (retarget {found[0].version}{'' if self.video else f', score {best:.1f}'})"
        else:
            mark += f" (best frame score {best:.1f}, needs {DETECT_Z})" if self.video else f" (score {best:.1f}, needs {DETECT_Z})"
        return (f"{self.path}: {'MARKED' if self.marked else 'NOT MARKED'}: {mark}; {metadata.summary(self.tags)}; "
                f"{_manifest_phrase(self.manifest)}")


def _manifest_phrase(manifest: dict | None) -> str:
    if manifest is None:
        return "no C2PA manifest" if c2pa_manifest.available() else "C2PA not checked (c2pa-python is not installed)"
    if "error" in manifest:
        return f"C2PA manifest unreadable ({manifest['error']})"
    what = "AI-generated" if manifest["ai_generated"] else "no AI-generated claim"
    signer = "self-signed local key" if manifest["self_signed"] else (manifest.get("issuer") or "unknown signer")
    return f"C2PA {manifest['validation']}: {manifest['generator']}, {what}, signed by {signer}"


def sample_frames(path: Path, count: int = DEFAULT_SAMPLES) -> list[np.ndarray]:
    """Up to `count` frames spread evenly over the video."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise BadInputError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        total = stream.frames or int((float(stream.duration * stream.time_base) if stream.duration else 0) *
                                     float(stream.average_rate or DEFAULT_FPS)) or count
        step = max(1, total // count)
        frames = []
        for index, frame in enumerate(container.decode(stream)):
            if index % step == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= count:
                    break
    if not frames:
        raise BadInputError(f"{path}: no frame decodes")
    return frames


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def verify_file(path, samples: int = DEFAULT_SAMPLES) -> FileReport:
    """Raises BadInputError (one line) for a file that is missing or that is neither an image nor a video we read."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    kind = media_kind(path)
    if kind not in ("image", "video"):
        raise BadInputError(f"{path}: not an image or a video (by its suffix)")
    try:
        frames = sample_frames(path, samples) if kind == "video" else [_read_image(path)]
        tags = metadata.read_tags(path, video=kind == "video")
    except BadInputError:
        raise
    except Exception as err:  # PIL's UnidentifiedImageError, av.FFmpegError...: a damaged or misnamed file
        raise BadInputError(f"{path}: cannot be read as {'a video' if kind == 'video' else 'an image'} ({user_message(err)})") from None
    return FileReport(path, [detect(f) for f in frames], kind == "video", tags, c2pa_manifest.read(path),
                      detect_frames(frames) if kind == "video" else None)


def verify_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="retarget verify",
        description="Report, per file, whether retarget's invisible watermark is found (for a video: in how many sampled "
                    "frames), what its metadata and C2PA manifest say. Exit code 0 when every file carries the "
                    "watermark, 1 otherwise (an unreadable file counts as not marked).",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="images (png, jpg, webp, bmp) or videos")
    parser.add_argument("--frames", type=int, default=12, help="frames sampled evenly from each video (default 12)")
    return parser


def run_verify(argv: list[str]) -> int:
    args = verify_parser().parse_args(argv)
    if args.frames < 1:
        raise RetargetError("--frames must be 1 or more")
    all_marked = True
    for path in args.files:
        try:
            report = verify_file(path, args.frames)
        except RetargetError as err:
            print(f"{err} (NOT MARKED)", file=sys.stderr)
            all_marked = False
            continue
        print(report.line(), flush=True)
        all_marked &= report.marked
    return 0 if all_marked else 1
