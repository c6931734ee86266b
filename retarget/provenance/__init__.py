"""Provenance: every picture retarget writes says it is AI-generated (EU AI Act Art. 50(2)).

- watermark: an invisible watermark in the pixels of every output frame (survives H.264, JPEG, resizing)
- metadata: PNG text chunks and MP4 container tags (tool, version, "AI-generated")
- c2pa: a signed C2PA manifest in PNG/JPEG stills and MP4 files (c2pa-python)
- `retarget verify FILE...` (retarget.cli.verify) reads all three back

Every image/video sink calls mark_frame() on the final frame it writes, so marking happens in one
place and after any later processing of the generator's output. Marking is on unless configure()
turned it off (ProvenanceOptions.mark: research use only, where the law allows).
"""

from __future__ import annotations

import threading

import numpy as np

from retarget import __version__

TOOL = "retarget"
_state = {"mark": True, "c2pa_key": None, "c2pa_cert": None}
_lock = threading.Lock()


def configure(options) -> None:
    """Apply a ProvenanceOptions (retarget.config.provenance) to every sink of this process."""
    with _lock:
        _state["mark"] = bool(options.mark)
        _state["c2pa_key"] = getattr(options, "c2pa_key", None)
        _state["c2pa_cert"] = getattr(options, "c2pa_cert", None)


def marking_enabled() -> bool:
    return _state["mark"]


def signing_paths():
    """(key, certificate chain) paths the user configured, or (None, None) for our self-signed default."""
    return _state["c2pa_key"], _state["c2pa_cert"]


def image_save_options(fmt: str | None) -> dict:
    """Pillow save() keywords that add the AI-generated metadata while marking is on (PNG chunks, EXIF)."""
    if not marking_enabled():
        return {}
    from retarget.provenance.metadata import image_save_options as options

    return options(fmt)


def video_tags() -> dict[str, str]:
    """MP4 container tags while marking is on."""
    if not marking_enabled():
        return {}
    from retarget.provenance.metadata import video_tags as tags

    return tags()


def finish_file(path, title: str | None = None, suffix: str | None = None) -> bool:
    """A complete output file (still or video, maybe under its temp name): add the signed C2PA manifest
    while marking is on. True when it holds one."""
    if not marking_enabled():
        return False
    from pathlib import Path

    from retarget.provenance import c2pa_manifest

    suffix = (suffix or Path(path).suffix).lower()
    if suffix not in c2pa_manifest.MIME_TYPES:
        return False
    key, chain = signing_paths()
    return c2pa_manifest.embed(path, title, key, chain, suffix=suffix)


def mark_frame(rgb: np.ndarray) -> np.ndarray:
    """The frame a sink writes: watermarked (a new array) while marking is on, else unchanged."""
    if not marking_enabled():
        return rgb
    from retarget.provenance.watermark import embed

    return embed(rgb, __version__)
