"""The app's recording folder and how it shows a recording's length.

The frames themselves go through retarget.session.live_outputs.LiveOutputs, which the session owns.
"""

from __future__ import annotations

from pathlib import Path


def default_record_dir() -> Path:
    videos = Path.home() / "Videos"
    return videos if videos.is_dir() else Path.home()


def elapsed_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
