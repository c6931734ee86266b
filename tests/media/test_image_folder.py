"""A folder of images as a frame source."""

from __future__ import annotations

import pytest

from retarget.errors import BadInputError
from retarget.media.sources import ImageFolderSource, open_source
from tests.media.clips import index_of, pattern


def test_image_folder_uses_natural_order(tmp_path):
    from PIL import Image

    for n in (10, 2, 1, 21):
        Image.fromarray(pattern(n)).save(tmp_path / f"frame{n}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as src:
        assert isinstance(src, ImageFolderSource) and src.frame_count == 4 and src.size == (64, 48)
        frames = list(src)
    assert [index_of(f.image) for f in frames] == [1, 2, 10, 21]
    assert [f.time for f in frames] == [0.0, 0.04, 0.08, 0.12]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInputError, match="no images"):
        open_source(str(empty))
