"""Read any still image a user may hand us as an upright RGB uint8 array."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from retarget.errors import BadInputError, first_line

_WHITE = (255, 255, 255, 255)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Return the image at `path` as HxWx3 RGB uint8, EXIF orientation applied, transparency over white."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: file not found")
    if not path.is_file():
        raise BadInputError(f"{path}: not a file")
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so truncated files fail here and not later
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except UnidentifiedImageError:
        raise BadInputError(f"{path}: not an image file (format not recognised)") from None
    except Image.DecompressionBombError as err:
        raise BadInputError(f"{path}: image too large to open safely ({first_line(err)}); scale it down") from None
    except (OSError, ValueError, SyntaxError) as err:  # PIL reports corrupt data with these
        reason = first_line(err)
        raise BadInputError(f"{path}: cannot read image ({reason})") from None


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # High bit-depth greyscale: PIL's convert("L") clips instead of scaling.
        data = np.asarray(image, dtype=np.float64)
        top = 65535.0 if data.max(initial=0) > 255 else 255.0
        grey = np.clip(np.round(data * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        # Faces pasted on transparent backgrounds read best on white (black hides dark hair).
        background = Image.new("RGBA", rgba.size, _WHITE)
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
