"""Which face: numbering the faces in a picture, picking one, and following it across frames.

Faces are numbered 1, 2, 3, ... from LEFT TO RIGHT by the centre of their box, in the CLI
(`--identity-face N`, `--driver-face N`), in the lines it prints and in the app. With no choice,
the largest face is used, as before. A chosen driver face is tracked: each frame takes the face
whose box is nearest the previous frame's one (not the largest), so two faces that swap size do
not swap roles; a frame where it is gone holds the last expression, and the face is taken up
again when a box reappears near where it was last seen.
"""

from __future__ import annotations

import math
from typing import Sequence

from retarget.errors import BadInputError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels

# A box counts as the same face if its centre moved less than this many face sizes (plus the
# change of scale, in log units) since the last frame where the face was seen. Two faces side by
# side are about one face size apart, so a vanished face is not replaced by its neighbour.
MAX_TRACK_DISTANCE = 0.6


def box_size(box: Box) -> float:
    """The face's size in pixels: the side of a square of the box's area."""
    x0, y0, x1, y1 = box
    return math.sqrt(max(x1 - x0, 1e-6) * max(y1 - y0, 1e-6))


def box_centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


def left_to_right(boxes: Sequence[Box]) -> list[int]:
    """Indices of the boxes ordered by their face number: by centre x, then centre y."""
    return sorted(range(len(boxes)), key=lambda i: (box_centre(boxes[i])[0], box_centre(boxes[i])[1]))


def largest(boxes: Sequence[Box]) -> int:
    """Index of the largest box (the first of equal ones), the rule used when no face is chosen."""
    areas = [max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) for b in boxes]
    return areas.index(max(areas))


def box_distance(previous: Box, box: Box) -> float:
    """How far `box` is from `previous`: centre shift in face sizes plus the change of scale (log)."""
    (px, py), (x, y) = box_centre(previous), box_centre(box)
    size = box_size(previous)
    return math.hypot(x - px, y - py) / size + abs(math.log(box_size(box) / size))


def nearest(boxes: Sequence[Box], target: Box, max_distance: float | None = MAX_TRACK_DISTANCE) -> int | None:
    """Index of the box nearest `target`; None if there is none or the nearest is farther than max_distance."""
    if not boxes:
        return None
    distances = [box_distance(target, b) for b in boxes]
    best = min(range(len(boxes)), key=distances.__getitem__)
    if max_distance is not None and distances[best] > max_distance:
        return None
    return best


def describe_faces(boxes: Sequence[Box]) -> str:
    """'1: 120x140 px at (10, 20), 2: ...' with the boxes given in face-number order."""
    parts = []
    for number, (x0, y0, x1, y1) in enumerate(boxes, start=1):
        parts.append(f"{number}: {round(x1 - x0)}x{round(y1 - y0)} px at ({round(x0)}, {round(y0)})")
    return ", ".join(parts)


def check_face_number(number: int, boxes: Sequence[Box], what: str, flag: str = "face") -> None:
    """A one-line BadInputError when `number` is not one of the faces (boxes in face-number order)."""
    count = len(boxes)
    if 1 <= number <= count:
        return
    if count == 0:
        raise BadInputError(f"{flag} {number}: no face found in {what}")
    valid = "1" if count == 1 else f"1 to {count}"
    raise BadInputError(f"{flag} {number}: {what} has {count} face{'s' if count > 1 else ''} "
                        f"(numbered left to right: {describe_faces(boxes)}); choose {valid}")


class FaceTracker:
    """Chooses the face to use in each frame of one stream.

    number None: the largest face, every frame (the default). number N: face N from left to right
    in the first frame with at least N faces, then the face nearest the previous box. follow(box)
    (the app's click) switches to tracking the face nearest that box from the next frame on.
    """

    def __init__(self, number: int | None = None, max_distance: float = MAX_TRACK_DISTANCE):
        if number is not None and number < 1:
            raise BadInputError(f"face {number}: faces are numbered from 1 (left to right)")
        self.number = number
        self.max_distance = max_distance
        self.box: Box | None = None  # where the tracked face was last seen
        self._requested: Box | None = None  # set by follow() on another thread, taken up by pick()

    @property
    def tracking(self) -> bool:
        return self.number is not None or self.box is not None or self._requested is not None

    def follow(self, box: Box) -> None:
        """Track the face nearest `box` from the next frame on (one assignment: safe from another thread)."""
        self._requested = tuple(float(v) for v in box)

    def pick(self, boxes: Sequence[Box]) -> int | None:
        """Index (into boxes, in the given order) of the face to use in this frame; None: none of them."""
        requested, self._requested = self._requested, None
        if requested is not None:
            self.box = requested
            found = nearest(boxes, requested, max_distance=None)  # the user pointed at it: take the nearest
        elif self.box is not None:
            found = nearest(boxes, self.box, self.max_distance)
        elif self.number is not None:
            order = left_to_right(boxes)
            found = order[self.number - 1] if len(order) >= self.number else None
        else:
            return largest(boxes) if boxes else None
        if found is not None:
            self.box = tuple(boxes[found])
        return found


def numbered(faces: Sequence) -> list:
    """Faces (anything with a .box, e.g. FaceObservation) in face-number order: left to right."""
    return [faces[i] for i in left_to_right([face.box for face in faces])]
