"""An offline job's work folder (`.NAME.work/` beside the output): one PNG per rendered frame and the
job's manifest (job.json), so a stopped job resumes where it was; guarded by a lock file beside it."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np

from retarget.errors import OutputError, RetargetError
from retarget.outputs import JobLock, atomic_write, resolved


def work_dir_for(out: Path) -> Path:
    out = resolved(out)
    return out.with_name(f".{out.name}.work")


def work_lock_for(out: Path) -> JobLock:
    work = work_dir_for(out)
    return JobLock(work.with_name(work.name + ".lock"), what=str(work))


class WorkFolder:
    """The frames rendered so far for one output, and the manifest that says which job they belong to."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def for_output(cls, out: Path) -> "WorkFolder":
        return cls(work_dir_for(out))

    @property
    def manifest_path(self) -> Path:
        return self.path / "job.json"

    def frame_path(self, index: int) -> Path:
        return self.path / f"frame_{index:06d}.png"

    def rendered_indices(self) -> set[int]:
        return {int(p.stem.split("_")[1]) for p in self.path.glob("frame_*.png")}

    def write_frame(self, index: int, image: np.ndarray) -> None:
        from PIL import Image

        path = self.frame_path(index)
        try:
            # Level 1: about 4x faster than Pillow's default 6 on photo-like frames, a little larger; lossless either way.
            atomic_write(path, lambda temp: Image.fromarray(image).save(temp, format="PNG", compress_level=1))
        except OSError as err:  # the temp is gone, so the work folder holds only whole frames
            reason = "no space left on the device" if err.errno == errno.ENOSPC else (err.strerror or str(err))
            raise OutputError(f"cannot write {path} ({reason}); the frames rendered so far are kept: "
                              f"fix that and run the same command with --resume") from None

    def read_frame(self, index: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self.frame_path(index)) as im:
            return np.asarray(im.convert("RGB"))

    def drop_unreadable_frames(self, indices: set[int], size: int | None = None) -> int:
        """Resume: a cached frame that does not decode (cut short, emptied) or is not `size` pixels square is
        removed and rendered again."""
        from PIL import Image

        dropped = 0
        for index in sorted(indices):
            path = self.frame_path(index)
            try:
                with Image.open(path) as im:
                    im.load()
                    if size is not None and im.size != (size, size):
                        raise ValueError(f"{im.size} is not the generator's {size}x{size}")
            except Exception:  # Pillow reports damage as OSError, SyntaxError, ValueError...
                path.unlink(missing_ok=True)  # ours: the work folder only holds frames we rendered
                indices.discard(index)
                dropped += 1
        return dropped

    def holds(self, manifest: dict) -> bool:
        """Whether the folder belongs to this job (same inputs and settings), so it can be resumed."""
        try:
            previous = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError, RecursionError):
            return False
        return previous == json.loads(json.dumps(manifest))  # compared as stored (tuples become lists)

    def prepare(self, manifest: dict, resume: bool) -> None:
        """Resume: check the folder is this job's. Otherwise start it afresh with this manifest."""
        work = self.path
        if work.is_symlink() or (work.exists() and not work.is_dir()):
            raise OutputError(f"{work}: is a link or a file, not a work folder made by retarget; "
                              f"remove it, or choose another --out")
        if work.exists():
            if resume:
                if not self.holds(manifest):
                    raise RetargetError(
                        f"{work} holds an unfinished job with other inputs or settings; run without --resume to start over"
                    )
                return
            shutil.rmtree(work)  # ours: only this program makes `.NAME.work` folders, and the job lock is held
        work.mkdir(parents=True)
        atomic_write(self.manifest_path,
                     lambda temp: temp.write_text(json.dumps(manifest, indent=1, sort_keys=True)))

    def remove(self) -> None:
        if not self.path.is_symlink():  # ours are real folders; a link is never followed into
            shutil.rmtree(self.path, ignore_errors=True)
