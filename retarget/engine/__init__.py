"""Runs source -> perception -> mapping -> generator -> sinks, offline (every frame) or live (newest frame).

- stages: decoding and perception on their own threads (perception_stream)
- work_folder: an offline job's resumable work folder (WorkFolder) and its lock
- offline: OfflineRenderer, JobSummary, job_key (its RenderOptions are knobs: retarget.config.render)
- live: LiveStream, LiveStats, LatestFrameSlot
"""

from retarget.engine.live import LatestFrameSlot, LiveStream, LiveStats
from retarget.engine.offline import JobSummary, OfflineRenderer, job_key
from retarget.engine.stages import perception_stream
from retarget.engine.work_folder import WorkFolder, work_dir_for, work_lock_for

__all__ = [
    "JobSummary", "LatestFrameSlot", "LiveStream", "LiveStats", "OfflineRenderer", "WorkFolder",
    "job_key", "perception_stream", "work_dir_for", "work_lock_for",
]
