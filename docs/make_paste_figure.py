"""Make docs/paste-back.png: full-frame output (paste-back) shown with stand-in generators, no model involved.

    python docs/make_paste_figure.py ../shared/media/identity_jackie_wide.png ../shared/assets/face_landmarker.task docs/paste-back.png

Panels: the identity photo; `--frame crop` (what the generator returns: here a stand-in that returns the identity's own
aligned crop); `--frame full` (that crop pasted back: the photo again, at its resolution); a stand-in returning a flat
colour pasted back (where the mask reaches and how softly it fades).
"""

from __future__ import annotations

import sys

import cv2
import numpy as np


def labelled(image: np.ndarray, height: int, text: str) -> np.ndarray:
    width = int(round(image.shape[1] * height / image.shape[0]))
    panel = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    cv2.rectangle(panel, (0, 0), (width, 26), (0, 0, 0), thickness=-1)
    cv2.putText(panel, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def main(photo_path: str, landmarker_path: str, out: str) -> None:
    from PIL import Image

    from retarget.face.align import align_ffhq
    from retarget.face.image_io import load_image
    from retarget.face.landmarker import FaceLandmarker
    from retarget.face.paste import FacePlacement

    photo = load_image(photo_path)
    with FaceLandmarker(landmarker_path, mode="image") as landmarker:
        aligned, matrix = align_ffhq(photo, landmarker.detect(photo).landmarks)
    placement = FacePlacement(photo, matrix, aligned=aligned)
    full = placement.paste(aligned)  # the stand-in generator: the identity's own aligned crop
    flat = placement.paste(np.full((512, 512, 3), (250, 20, 200), np.uint8))  # the stand-in: a flat colour
    h, w = photo.shape[:2]
    height = 300
    top = [labelled(photo, height, f"identity photo {w}x{h}"),
           labelled(aligned, height, "--frame crop: 512x512 (stand-in output)")]
    bottom = [labelled(full, height, f"--frame full: stand-in crop pasted back, {w}x{h}"),
              labelled(flat, height, "flat-colour stand-in pasted back: the soft mask")]
    rows = [np.concatenate(row, axis=1) for row in (top, bottom)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    Image.fromarray(np.concatenate(rows, axis=0)).save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
