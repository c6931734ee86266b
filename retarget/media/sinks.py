"""Frame sinks: H.264 video with the driver's audio, PNG sequences, blendshape CSVs, callbacks.

Every file sink writes under a temporary name next to its target and renames on close(), so an
interrupted run never leaves a half-written file under the final name; abort() removes the temp.
Each kind lives in its own module (video_sink, audio_mux, png_sequence, blendshape_csv,
side_by_side, frame_sink) and is re-exported here, so callers import from one place.
"""

from __future__ import annotations

from retarget.media.audio_mux import mux_audio
from retarget.media.blendshape_csv import BlendshapeCsvWriter
from retarget.media.frame_sink import CallbackSink, FrameSink
from retarget.media.png_sequence import PngSequenceSink
from retarget.media.side_by_side import SideBySideSink, side_by_side, side_by_side_size
from retarget.media.video_sink import TimedVideoSink, VideoSink, frame_rate

__all__ = [
    "BlendshapeCsvWriter",
    "CallbackSink",
    "FrameSink",
    "PngSequenceSink",
    "SideBySideSink",
    "TimedVideoSink",
    "VideoSink",
    "frame_rate",
    "mux_audio",
    "side_by_side",
    "side_by_side_size",
]
