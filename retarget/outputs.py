"""Where output may be written: one rule for every writer (CLI, engine, extract, eval, bench, training, app).

- An output never resolves to an input, contains one, or lies inside an input folder (`check_output`).
- A folder is only ever replaced or filled wholesale when this program made it: folders we create
  carry a marker file (`MARKER`); an existing folder that is neither empty nor marked is refused
  (`claim_folder`, `replace_folder`).
- Files appear under their final name only when complete (`atomic_write`, `write_text`), written
  beside the target under a hidden temporary name and renamed.
- Problems are found before any work: a parent that is a file, or a folder we cannot write in
  (`check_writable`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Callable, Iterable, Mapping

from retarget.errors import BadInputError, OutputError, first_line
from retarget.names.kinds import is_webcam_spec

MARKER = ".retarget-output"


def resolved(path) -> Path:
    """Absolute, symlinks followed, `.`/`..` gone (the path need not exist)."""
    try:
        return Path(os.path.abspath(Path(path).expanduser())).resolve()
    except (RuntimeError, OSError) as err:  # Python 3.11 reports a link loop as RuntimeError
        raise BadInputError(f"{path}: its symbolic links loop or cannot be followed ({first_line(err, 80)}); "
                            f"fix the links or give another path") from None


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe (fifo)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def refuse_foreign(path, label: str = "--out") -> None:
    """A file we are about to write (or replace) must be absent or a regular file: never write through a
    symbolic link we did not make, never replace a device, fifo, socket or folder."""
    where = Path(os.path.abspath(Path(path).expanduser()))
    try:
        mode = os.lstat(where).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OutputError(f"{label} {path}: its symbolic links loop; fix the links or choose another path") from None
        return  # absent (or under a file): the write itself reports that, with the path
    if not stat.S_ISREG(mode):
        raise OutputError(f"{label} {path}: is {_kind_of(mode)}, which retarget never writes through or replaces; "
                          f"remove it or choose another name")


def fresh_temp(path, tag: str = "partial") -> Path:
    """temp_path(path, tag), checked like the target: a link or device under our temp name is refused."""
    refuse_foreign(path)
    temp = temp_path(path, tag)
    refuse_foreign(temp, "temporary file")
    return temp


def _inside(child: Path, parent: Path) -> bool:
    return child != parent and parent in child.parents


def check_output(out, inputs: Mapping[str, object] | Iterable[tuple[str, object]], label: str = "--out") -> Path:
    """Refuse an output that is, contains, or lies inside any input; returns the resolved output.

    `inputs` maps a label (e.g. "--driver") to a path (None and non-path specs such as webcam:0 are skipped).
    """
    target = resolved(out)
    items = inputs.items() if isinstance(inputs, Mapping) else inputs
    for name, value in items:
        if value is None or is_webcam_spec(value):
            continue
        source = resolved(value)
        if target == source:
            raise OutputError(f"{label} {out} is the same path as {name} {value}; choose another output name")
        if _inside(source, target):
            raise OutputError(f"{label} {out} contains {name} {value}; choose an output outside the inputs")
        if _inside(target, source) and not source.is_file():  # under a file: check_writable says "is a file"
            raise OutputError(f"{label} {out} lies inside {name} {value}; choose an output outside the inputs")
    return target


def check_writable(path, label: str = "--out") -> None:
    """The first existing ancestor of `path` must be a folder we can write in (checked before any work)."""
    target = resolved(path)
    parent = target.parent
    while not parent.exists():
        if parent.is_symlink():  # a dangling link: mkdir would fail on it
            raise OutputError(f"{label} {path}: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{label} {path}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{label} {path}: cannot write in {parent} (read-only or no permission); choose another place")


def is_ours(folder) -> bool:
    return (Path(folder) / MARKER).is_file()


def mark(folder) -> None:
    """Record that this program made `folder`, so a later run may replace its contents."""
    (Path(folder) / MARKER).write_text("made by retarget; safe for retarget to replace\n")


def check_folder_target(folder, label: str = "--out") -> None:
    """A folder output may go here: absent, empty, or one of our own previous outputs."""
    path = resolved(folder)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{label} {folder}: is a file, not a folder; choose a folder name")
    if path.is_dir() and not is_ours(path) and any(path.iterdir()):
        raise OutputError(f"{label} {folder}: is an existing folder with other files in it, which are never replaced; "
                          f"choose a new (or empty) folder")


def claim_folder(folder, label: str = "--out") -> Path:
    """Create (or adopt an empty, or reuse our own) folder for output, and mark it as ours."""
    check_folder_target(folder, label)
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    if not is_ours(path):
        mark(path)
    return path


def replace_folder(staging: Path, target: Path, label: str = "--out") -> None:
    """Move a finished `staging` folder to `target`; an old `target` goes only if it is ours or empty."""
    check_folder_target(target, label)
    mark(staging)
    if target.is_dir():
        if is_ours(target):
            shutil.rmtree(target)
        else:
            target.rmdir()  # empty (check_folder_target refused anything else)
    os.replace(staging, target)


def reserve_new_file(folder: Path, stem: str, suffix: str) -> Path:
    """folder/stem.suffix, or stem-2, stem-3 ... : the first name not taken, created empty (O_EXCL) so that
    no other writer can take it meanwhile. The caller replaces it with the finished file, or removes it."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return path
        except FileExistsError:
            continue
    raise OSError(f"no free file name for {stem}{suffix} in {folder}")


def temp_path(path, tag: str = "partial") -> Path:
    """`out/clip.mp4` -> `out/.clip.<tag>.mp4`: hidden, same folder (so rename is atomic), same suffix."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{tag}{path.suffix}")


def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """Call write(temp) and rename temp to `path`; on any failure the temp goes and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = fresh_temp(path)
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def write_text(path, text: str) -> Path:
    return atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_json(path, data, indent: int = 2) -> Path:
    return write_text(path, json.dumps(data, indent=indent))


def write_image(path, image, **save_options) -> Path:
    """An RGB uint8 array as an image file (format from the suffix), atomically; marked as AI-generated
    (watermark, metadata, C2PA manifest: retarget.provenance) unless marking is off."""
    from PIL import Image

    from retarget import provenance

    picture = Image.fromarray(provenance.mark_frame(image))
    suffix = Path(path).suffix.lower().lstrip(".")
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP"}.get(suffix)
    options = {**provenance.image_save_options(fmt), **save_options}

    def write(temp: Path) -> None:
        picture.save(temp, format=fmt, **options)
        provenance.finish_file(temp, title=Path(path).name)

    return atomic_write(path, write)


def check_file_output(out, inputs, label: str = "--out") -> Path:
    """Everything a single-file output needs before any work: not an input, a writable place."""
    target = check_output(out, inputs, label)
    if target.is_dir():
        raise OutputError(f"{label} {out}: is an existing folder; give a file name")
    refuse_foreign(out, label)
    # Our temporary names beside it, refused now, not after the work: the partial file, and the audio mux's
    # temporary beside that (media.video_sink muxes into the partial file before the final rename).
    partial = temp_path(Path(os.path.abspath(Path(out).expanduser())), "partial")
    for temp in (partial, temp_path(partial, "muxing")):
        refuse_foreign(temp, "temporary file")
    check_writable(out, label)
    return target


class JobLock:
    """An OS file lock held for a whole job, so two jobs never share a work folder.

    The lock file sits beside the folder it guards and names its holder (process, start time,
    command line), which a refused second job quotes. It is removed on release.
    """

    def __init__(self, path, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> "JobLock":
        import datetime
        import sys

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            refuse_foreign(self.path, "lock file")  # never write our holder line through a link into another file
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            if not _try_lock(fd):
                holder = _read_holder(fd)
                os.close(fd)
                raise OutputError(f"{self.what} is in use by another job ({holder}); wait for it to end, "
                                  f"or write to another --out")
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # its last holder removed the file between our open and our lock: lock the new one
        started = datetime.datetime.now().isoformat(timespec="seconds")
        holder = f"process {os.getpid()}, started {started}: {' '.join(sys.argv[:1] + sys.argv[1:])[:300]}"
        os.ftruncate(fd, 0)
        os.write(fd, holder.encode("utf-8", "replace"))
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


def _try_lock(fd: int) -> bool:
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True


def _unlock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    except ImportError:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 1000).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "process unknown"
