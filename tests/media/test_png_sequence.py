"""The PNG-sequence sink."""

from __future__ import annotations

import numpy as np

from retarget.media.png_sequence import PngSequenceSink
from tests.media.clips import pattern


def test_png_sequence_sink(tmp_path):
    from PIL import Image

    with PngSequenceSink(tmp_path / "pngs", start_index=5) as sink:
        for i in range(3):
            sink.write(pattern(i))
    names = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert names == ["frame_000005.png", "frame_000006.png", "frame_000007.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "pngs" / "frame_000006.png")), pattern(1))
