"""A folder of images as a frame source, in natural order, each frame upright (EXIF)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError
from retarget.media.frame_source import DEFAULT_FPS, Frame, FrameSource, one_line
from retarget.names.kinds import IMAGE_SUFFIXES


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _unreadable_image_errors() -> tuple:
    from PIL import Image

    # Pillow reports damage as OSError/SyntaxError/ValueError, and too-large images as DecompressionBombError.
    return (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class ImageFolderSource(FrameSource):
    """Image files of a folder in natural order (frame2 before frame10), timed at `fps`.

    A file that cannot be read is skipped (counted in `skipped`, the first named in `decode_error`);
    the frames after it still come, numbered without a gap.
    """

    def __init__(self, folder, fps: float = DEFAULT_FPS):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise BadInputError(f"{self.folder}: is not a folder")
        self.files = sorted(
            (p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
            key=lambda p: _natural_key(p.name),
        )
        if not self.files:
            raise BadInputError(f"{self.folder}: contains no images ({', '.join(IMAGE_SUFFIXES)})")
        self.fps = float(fps)
        self.frame_count = len(self.files)
        self.duration = len(self.files) / self.fps
        self._index = 0  # next file
        self._emitted = 0  # next frame index
        self.skipped = 0
        try:
            first = self._load(self.files[0])
        except _unreadable_image_errors() as err:
            raise BadInputError(f"{self.files[0]}: is not an image that can be read ({one_line(err)}); "
                                f"remove it from the folder or replace it") from None
        self._pending = first
        self.size = (first.shape[1], first.shape[0])

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            # Phone photos store their orientation in EXIF; frames must come out upright.
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))

    def __next__(self) -> Frame:
        while self._index < len(self.files):
            path = self.files[self._index]
            self._index += 1
            if self._pending is not None:
                image, self._pending = self._pending, None
            else:
                try:
                    image = self._load(path)
                except _unreadable_image_errors() as err:
                    self.skipped += 1
                    self._first_skip = getattr(self, "_first_skip", None) or f"{path.name}: {one_line(err)[:120]}"
                    self.decode_error = f"{self.skipped} unreadable image(s) skipped (first: {self._first_skip})"
                    continue
            index = self._emitted
            self._emitted += 1
            return Frame(index=index, time=index / self.fps, image=image)
        raise StopIteration
