"""What picture the outputs show: the whole identity photo with the generated face pasted back, or the aligned crop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from retarget.config.knobs import knob, validate_knobs

# retarget.face.paste.FRAMES, spelled out: config imports nothing of face/ (which reaches config through media)
FRAMES = ("full", "crop")


@dataclass
class FrameOptions:
    """The output frame of stills, video renders, live streams, recordings and the virtual camera.

    "full" (the default everywhere: stills, renders, webcam recordings and the app) pastes the generated face
    back into the identity photo at the photo's resolution; "crop" is the generator's aligned square face.
    The app's face tools (the Compose expression dock's still and thumbnails, the track editor's preview) show the
    crop: they render through Session.render_expressions / the pipeline, which stay crops.
    """

    SECTION: ClassVar[str] = "output"
    TITLE: ClassVar[str] = "Output frame"

    frame: str = knob("full", flag="--frame", choices=FRAMES, group="output frame", label="Frame",
                      help="full: the generated face pasted back into the identity photo at its own resolution "
                           "(default); crop: the generator's square FFHQ-aligned face",
                      tooltip="Full: the whole identity photo with the generated face pasted back (at the photo's "
                              "resolution); crop: the generated square face alone. Recordings and the virtual "
                              "camera show the same")
    colour_match: bool = knob(False, flag="--colour-match", group="output frame", label="Match colours at the seam",
                              gui_beside="frame",
                              help="full frame: shift the generated face's colours to the photo's along the mask's edge")

    def validate(self) -> None:
        validate_knobs(self)

    def job_key(self) -> dict:
        """What this frame adds to a video job's key: full-frame and crop renders are different jobs (crop keeps
        the key it always had, so earlier crop renders still resume)."""
        return {} if self.frame == "crop" else {"frame": self.frame, "colour_match": self.colour_match}
