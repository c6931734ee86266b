"""A PNG sequence sink: each frame written under a temp name, then renamed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from retarget import provenance
from retarget.media.frame_sink import FrameSink, as_rgb, remove_file
from retarget.outputs import refuse_foreign


class PngSequenceSink(FrameSink):
    """frame_000000.png, frame_000001.png, ... in `folder`; each written under a temp name, then renamed."""

    def __init__(self, folder, start_index: int = 0, compress_level: int = 3):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.next_index = int(start_index)
        self.compress_level = compress_level
        self._temp: Path | None = None

    def path_for(self, index: int) -> Path:
        return self.folder / f"frame_{index:06d}.png"

    def write(self, rgb: np.ndarray, index: int | None = None) -> Path:
        from PIL import Image

        index = self.next_index if index is None else int(index)
        target = self.path_for(index)
        refuse_foreign(target)
        self._temp = target.with_name(f".{target.name}.partial")
        refuse_foreign(self._temp, "temporary file")
        # Marked as AI-generated (watermark, PNG text chunks, C2PA) unless marking is off: retarget.provenance.
        Image.fromarray(provenance.mark_frame(as_rgb(rgb))).save(self._temp, format="PNG", compress_level=self.compress_level,
                                                                 **provenance.image_save_options("PNG"))
        provenance.finish_file(self._temp, title=target.name, suffix=".png")
        os.replace(self._temp, target)
        self._temp = None
        self.next_index = index + 1
        return target

    def abort(self) -> None:
        remove_file(self._temp)
        self._temp = None
