"""`--identity-face N` / `--driver-face N`: checked against the pictures before the generator loads.

Faces are numbered from 1, left to right (retarget.face.selection). A photo with several faces
and no --identity-face gets one line naming them and the one used (the largest), so the user
knows the number to pass.
"""

from __future__ import annotations

import sys

from retarget.errors import BadInputError, RetargetError
from retarget.face.selection import check_face_number, describe_faces, largest, numbered
from retarget.names.kinds import is_webcam_spec, media_kind

SCAN_FRAMES = 250  # a driver video's first face is looked for in this many frames (10 s at 25 fps)


def check_face_flags(args) -> None:
    """Numbers only (no pictures needed): faces count from 1; --driver-face needs a driver with faces in it."""
    for flag in ("identity_face", "driver_face"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise RetargetError(f"--{flag.replace('_', '-')} {value}: faces are numbered from 1, left to right")
    if args.driver_face is not None and any(media_kind(d) == "blendshapes" for d in args.driver):
        raise BadInputError("--driver-face picks a face in driver images or video frames; a blendshape CSV has none")


def check_faces(args, landmarker_path, identity_image, drivers, still: bool, webcam: bool) -> bool:
    """The chosen faces exist; a photo with several faces says which one is used.

    landmarker_path None: the check runs only if the landmarker is on disk already (--landmarker, the
    environment, the cache), before any model loads or download. Returns whether it ran.
    """
    from retarget.errors import MissingWeightsError
    from retarget.face.landmarker import FaceLandmarker, landmarker_for

    if landmarker_path is None:
        try:
            landmarker_path = landmarker_for(args.landmarker, None, download=False)
        except MissingWeightsError:
            return False  # checked once the models (and with them the landmarker) are in
    with FaceLandmarker(landmarker_path, mode="image") as landmarker:
        faces = numbered(landmarker.detect_all(identity_image))
        boxes = [face.box for face in faces]
        if args.identity_face is not None:
            check_face_number(args.identity_face, boxes, str(args.identity), "--identity-face")
        elif len(boxes) > 1:
            print(f"note: {args.identity} has {len(boxes)} faces, numbered left to right: {describe_faces(boxes)}; "
                  f"using {largest(boxes) + 1} (the largest); choose another with --identity-face N", file=sys.stderr)
        if args.driver_face is None or webcam:
            return True  # a webcam's face is taken once N faces are in view
        for driver in drivers:
            found = _first_faces(landmarker, driver, still)
            if found is not None:
                where, boxes = found
                check_face_number(args.driver_face, boxes, where, "--driver-face")
    return True


def _first_faces(landmarker, driver, still: bool):
    """(what, boxes left to right) of the driver's first picture with a face; None if none in the first frames."""
    if still:
        from retarget.face.image_io import load_image

        image = load_image(driver)
        return str(driver), [face.box for face in numbered(landmarker.detect_all(image))]
    from retarget.media.sources import open_source

    if is_webcam_spec(driver):
        return None
    with open_source(str(driver)) as source:
        for frame in source:
            if frame.index >= SCAN_FRAMES:
                return None
            if frame.image is None:
                continue
            faces = landmarker.detect_all(frame.image)
            if faces:
                return f"frame {frame.index} of {driver} (its first with a face)", [f.box for f in numbered(faces)]
    return None


def face_choice_key(args) -> dict:
    """The chosen faces, for the resumable job's identity (empty when none is chosen)."""
    return {flag: getattr(args, flag) for flag in ("identity_face", "driver_face") if getattr(args, flag, None) is not None}
