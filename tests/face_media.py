"""Pictures with several faces, composed from the shared photos and videos (for the face-selection tests)."""

from __future__ import annotations

import numpy as np

BACKGROUND = 128


def face_tile(image: np.ndarray, box, size: int) -> np.ndarray:
    """A size x size square around the face in `box` (1.8x its size, edges repeated), resized."""
    import cv2

    x0, y0, x1, y1 = box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.9 * max(x1 - x0, y1 - y0)
    matrix = np.array([[size / (2 * half), 0, size / 2 - cx * size / (2 * half)],
                       [0, size / (2 * half), size / 2 - cy * size / (2 * half)]], np.float64)
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def side_by_side(left: np.ndarray, right: np.ndarray, width: int, height: int) -> tuple[np.ndarray, list]:
    """Two tiles on a grey canvas, left tile in the left half and right tile in the right half, vertically centred.

    Returns the canvas and the tiles' rectangles (x0, y0, x1, y1), left first.
    """
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    rects = []
    for tile, centre_x in ((left, width // 4), (right, 3 * width // 4)):
        h, w = tile.shape[:2]
        x0, y0 = centre_x - w // 2, (height - h) // 2
        canvas[y0:y0 + h, x0:x0 + w] = tile
        rects.append((x0, y0, x0 + w, y0 + h))
    return canvas, rects


def blank(image: np.ndarray, rect) -> np.ndarray:
    """The picture with one tile painted over in the background grey."""
    out = image.copy()
    x0, y0, x1, y1 = rect
    out[y0:y1, x0:x1] = BACKGROUND
    return out


def inside(box, rect) -> bool:
    """Whether a face box's centre lies in a tile's rectangle."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return rect[0] <= cx <= rect[2] and rect[1] <= cy <= rect[3]


def two_face_photo(shared_dir, landmarker_path):
    """Freeman (300 px tile) on the left, the painting (180 px) on the right of a 720x400 canvas; and the tiles' rects."""
    from retarget.face.image_io import load_image
    from retarget.face.landmarker import FaceLandmarker

    with FaceLandmarker(landmarker_path) as landmarker:
        tiles = []
        for name, size in (("identity_freeman.jpg", 300), ("identity_painting_s9.jpg", 180)):
            image = load_image(shared_dir / "media" / name)
            tiles.append(face_tile(image, landmarker.detect(image).box, size))
    return side_by_side(tiles[0], tiles[1], 720, 400)


def swap_video(shared_dir, path, frames: int = 12, left=(200, 340), right=(340, 200)):
    """Two talking faces (driver_d0 left, driver_d11 right), their tiles' sizes going linearly from start to end px:
    by default the left grows from 200 to 340 px while the right shrinks (at most 78 frames, driver_d0's length)."""
    import av

    clips = []
    for name in ("driver_d0.mp4", "driver_d11_audio.mp4"):
        with av.open(str(shared_dir / "media" / name)) as container:
            clips.append([f.to_ndarray(format="rgb24") for _, f in zip(range(frames), container.decode(video=0))])
    # The face fills about half of each 512 px driver frame: tiles of the whole frame keep it centred.
    sizes = [np.linspace(*ends, frames).round().astype(int) for ends in (left, right)]
    rects = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 720, 400, "yuv420p"
        for i in range(frames):
            canvas, frame_rects = side_by_side(resize(clips[0][i], sizes[0][i]), resize(clips[1][i], sizes[1][i]), 720, 400)
            rects.append(frame_rects)
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path, rects


def resize(image, size):
    import cv2

    return cv2.resize(image, (int(size), int(size)), interpolation=cv2.INTER_AREA)


