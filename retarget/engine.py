"""Runs source -> perception -> mapping -> generator -> sinks, offline (every frame) or live (newest frame).

Offline: decoding and MediaPipe run on their own threads behind bounded queues while the
generator renders batches; rendered frames land one PNG each in a work folder beside the output
(`.NAME.work/`), so a stopped job resumes where it was, and the final file is assembled (video +
the source's audio) under a temporary name and renamed only when complete.

Live: a capture thread keeps only the newest frame (latest-frame-wins); a worker renders it and
reports input fps, output fps and capture-to-output latency.
"""

from __future__ import annotations

import errno
import json
import queue
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from retarget.driving import DriverAnalyzer, DrivenFrame
from retarget.errors import BadInputError, JobInterrupted, OutputError, RetargetError
from retarget.media.kinds import OUTPUT_VIDEO_SUFFIXES
from retarget.media.sinks import PngSequenceSink, VideoSink, frame_rate, side_by_side
from retarget.media.sources import FrameSource, open_source
from retarget.outputs import JobLock, atomic_write, check_folder_target, check_output, replace_folder, resolved
from retarget.settings import GenerationSettings

_END = object()


# ---------------------------------------------------------------------------------------- perception
class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _stage(items: Iterator, fn: Callable, out: queue.Queue, stop: threading.Event) -> None:
    """Apply fn to every item on this thread and hand results on, blocking (bounded) while the consumer is busy."""
    try:
        for item in items:
            if stop.is_set():
                break
            result = fn(item)
            while not stop.is_set():
                try:
                    out.put(result, timeout=0.1)
                    break
                except queue.Full:
                    continue
    except BaseException as err:  # handed to the consumer, which re-raises it on its own thread
        out.put(_Failure(err))
    finally:
        while True:
            try:
                out.put(_END, timeout=0.1)
                break
            except queue.Full:
                if stop.is_set():
                    break


def _drain(q: queue.Queue, stop: threading.Event) -> Iterator:
    while True:
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return
            continue
        if item is _END:
            return
        if isinstance(item, _Failure):
            raise item.error
        yield item


def perception_stream(source: FrameSource, analyzer: DriverAnalyzer, depth: int = 8) -> Iterator[DrivenFrame]:
    """DrivenFrames in source order: decode on one thread, landmarks + mapping on another."""
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=depth)
    driven: queue.Queue = queue.Queue(maxsize=depth)
    threads = [
        threading.Thread(target=_stage, args=(iter(source), lambda f: f, decoded, stop), daemon=True, name="decode"),
        threading.Thread(target=_stage, args=(_drain(decoded, stop), analyzer, driven, stop), daemon=True, name="perception"),
    ]
    for thread in threads:
        thread.start()
    try:
        yield from _drain(driven, stop)
    finally:
        stop.set()
        for q in (decoded, driven):  # unblock producers waiting on a full queue
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
        _join_all(threads, (decoded, driven))


def _join_all(threads: list[threading.Thread], queues=()) -> None:
    """Wait until every worker has ended (they were told to stop); keep their queues drained meanwhile.

    Never time out: closing the source or the analyzer under a running worker is what this prevents.
    """
    for thread in threads:
        while thread.is_alive():
            for q in queues:
                while True:
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        break
            thread.join(timeout=0.1)


# ---------------------------------------------------------------------------------------- offline
@dataclass
class RenderOptions:
    batch_size: int = 4
    side_by_side: Path | None = None
    resume: bool = False
    # Render only frames [start, stop) (a share of one long video); perception still runs from frame 0
    # so smoothing and calibration match a single-process run.
    frame_range: tuple[int, int | None] | None = None
    assemble: bool = True
    progress: bool = True
    # Hold the work folder's lock for the job (off for the ranks of a split job, whose main process holds it).
    lock: bool = True


@dataclass
class JobSummary:
    driver: str
    output: str
    frames: int = 0
    rendered: int = 0
    reused: int = 0
    frames_without_face: int = 0
    seconds: float = 0.0
    audio: bool = False
    rank: int = 0
    # Why the output is shorter than the input (a truncated video, unreadable images), else None.
    incomplete: str | None = None
    skipped_inputs: int = 0
    rerendered: int = 0

    @property
    def fps(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0


def job_key(identity_photo: Path, models_description: str, exp_adapter=None, ref_lora=None, models=None) -> dict:
    """What, besides the driver and the settings, makes two renders the same job (so one can resume the other).

    Files are identified by content (assets.content_id), not by path: an adapter retrained in place is a new job.
    `models` (ModelFiles) adds the content of the weight files the pipeline loads.
    """
    from retarget.assets import content_id, file_sha256

    key = {
        "identity": file_sha256(identity_photo),
        "models": models_description,
        "exp_adapter": content_id(exp_adapter) if exp_adapter else None,
        "ref_lora": content_id(ref_lora) if ref_lora else None,
    }
    if models is not None:
        key["models_content"] = {
            name: content_id(path) for name, path in
            (("unet", models.unet), ("encoder", models.encoder), ("exp_adapter", models.exp_adapter),
             ("ref_lora", models.ref_lora), ("smirk", models.smirk)) if path is not None
        }
    return key


def work_dir_for(out: Path) -> Path:
    out = resolved(out)
    return out.with_name(f".{out.name}.work")


def work_lock_for(out: Path) -> JobLock:
    work = work_dir_for(out)
    return JobLock(work.with_name(work.name + ".lock"), what=str(work))


def _frame_png(work: Path, index: int) -> Path:
    return work / f"frame_{index:06d}.png"


def _rendered_indices(work: Path) -> set[int]:
    return {int(p.stem.split("_")[1]) for p in work.glob("frame_*.png")}


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    try:
        atomic_write(path, lambda temp: Image.fromarray(image).save(temp, format="PNG"))
    except OSError as err:  # the temp is gone, so the work folder holds only whole frames
        reason = "no space left on the device" if err.errno == errno.ENOSPC else (err.strerror or str(err))
        raise OutputError(f"cannot write {path} ({reason}); the frames rendered so far are kept: "
                          f"fix that and run the same command with --resume") from None


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _drop_unreadable_frames(work: Path, indices: set[int]) -> int:
    """Resume: a cached frame that does not decode (cut short, emptied) is removed and rendered again."""
    from PIL import Image

    dropped = 0
    for index in sorted(indices):
        path = _frame_png(work, index)
        try:
            with Image.open(path) as im:
                im.load()
        except Exception:  # Pillow reports damage as OSError, SyntaxError, ValueError...
            path.unlink(missing_ok=True)  # ours: the work folder only holds frames we rendered
            indices.discard(index)
            dropped += 1
    return dropped


def _driver_fingerprint(spec: str) -> dict:
    path = Path(spec)
    if path.is_file():
        stat = path.stat()
        return {"driver": str(path.resolve()), "bytes": stat.st_size, "mtime": int(stat.st_mtime)}
    return {"driver": str(spec)}


def _prepare_work_dir(work: Path, manifest: dict, resume: bool) -> None:
    manifest_path = work / "job.json"
    if work.exists():
        if resume:
            try:
                previous = json.loads(manifest_path.read_text())
            except (OSError, ValueError):
                previous = None
            if previous != json.loads(json.dumps(manifest)):  # compared as stored (tuples become lists)
                raise RetargetError(
                    f"{work} holds an unfinished job with other inputs or settings; run without --resume to start over"
                )
            return
        shutil.rmtree(work)  # ours: only this program makes `.NAME.work` folders, and the job lock is held
    work.mkdir(parents=True)
    atomic_write(manifest_path, lambda temp: temp.write_text(json.dumps(manifest, indent=1, sort_keys=True)))


class OfflineRenderer:
    """Renders every frame of a driver with one identity; resumable; output in source order."""

    def __init__(self, pipeline, context, make_analyzer: Callable[[], DriverAnalyzer], settings: GenerationSettings,
                 job_key: dict | None = None, mapping=None):
        self.pipeline = pipeline
        self.context = context
        self.make_analyzer = make_analyzer
        self.settings = settings
        self.job_key = job_key or {}
        self.mapping = mapping  # the analyzers' MappingSettings, when the caller knows them

    def mapping_settings(self):
        """The mapping the analyzers use, without building one (which may load SMIRK) when it is known."""
        if self.mapping is not None:
            return self.mapping
        with self.make_analyzer() as analyzer:
            return analyzer.mapping

    def manifest(self, driver: str, mapping) -> dict:
        return {
            "version": 1,
            **_driver_fingerprint(driver),
            "settings": asdict(self.settings),
            "mapping": asdict(mapping) if mapping is not None else None,
            **self.job_key,
        }

    def render(self, driver: str, out: Path, options: RenderOptions | None = None,
               cancel: threading.Event | None = None, on_frame: Callable | None = None, rank: int = 0) -> JobSummary:
        options = options or RenderOptions()
        out = Path(out)
        if options.batch_size < 1:
            raise RetargetError(f"--batch-size must be at least 1 (got {options.batch_size})")
        png_output = out.suffix == ""
        if not png_output and out.suffix.lower() not in OUTPUT_VIDEO_SUFFIXES:
            raise BadInputError(f"--out {out}: use a video name ({', '.join(OUTPUT_VIDEO_SUFFIXES)}) or a folder for PNGs")
        check_output(out, {"the driver": driver})
        if options.side_by_side is not None:
            check_output(options.side_by_side, {"the driver": driver, "--out": out}, "--side-by-side")
        if png_output:
            check_folder_target(out)
        if not options.lock:
            return self._render(driver, out, options, cancel, on_frame, rank)
        with work_lock_for(out):
            return self._render(driver, out, options, cancel, on_frame, rank)

    def _render(self, driver: str, out: Path, options: RenderOptions, cancel, on_frame, rank: int) -> JobSummary:
        from tqdm.auto import tqdm

        source = open_source(driver)  # probes: a bad driver fails here, before anything is written
        with source:
            if source.frame_count == 0:
                raise BadInputError(f"{driver}: has no frames")
            if options.side_by_side is not None and getattr(source, "size", None) is None:
                raise BadInputError(f"{driver}: has no pictures to put beside the output (--side-by-side)")
            work = work_dir_for(out)
            analyzer = self.make_analyzer()
            try:
                _prepare_work_dir(work, self.manifest(driver, analyzer.mapping), options.resume)
            except BaseException:
                analyzer.close()
                raise
            summary = JobSummary(driver=str(driver), output=str(out), rank=rank)
            start, stop = options.frame_range or (0, None)
            done = _rendered_indices(work)
            if options.resume:
                summary.rerendered = _drop_unreadable_frames(work, done)
            started = time.perf_counter()
            total = source.frame_count
            bar = tqdm(total=total, desc=Path(str(driver)).name, unit="frame", disable=not options.progress,
                       initial=0, dynamic_ncols=True)
            pending: list[DrivenFrame] = []

            def flush() -> None:
                if not pending:
                    return
                images = self.pipeline.generate(
                    self.context, np.stack([f.expression for f in pending]), self.settings,
                    frame_indices=[f.index for f in pending],
                )
                for frame, image in zip(pending, images):
                    _write_png(_frame_png(work, frame.index), image)
                    if on_frame is not None:
                        on_frame(frame, image)
                summary.rendered += len(pending)
                bar.update(len(pending))
                pending.clear()

            try:
                with analyzer:
                    for frame in perception_stream(source, analyzer):
                        if cancel is not None and cancel.is_set():
                            raise KeyboardInterrupt
                        summary.frames += 1
                        if frame.index < start or (stop is not None and frame.index >= stop):
                            continue
                        if frame.index in done:
                            summary.reused += 1
                            bar.update(1)
                            continue
                        pending.append(frame)
                        if len(pending) >= options.batch_size:
                            flush()
                    flush()
                    summary.frames_without_face = analyzer.frames_without_face
            except KeyboardInterrupt:
                raise JobInterrupted(
                    f"stopped after {len(_rendered_indices(work))} rendered frames; run the same command with --resume to continue"
                ) from None
            finally:
                bar.close()
            summary.skipped_inputs = int(getattr(source, "skipped", 0) or 0)
            if getattr(source, "decode_error", None):
                summary.incomplete = f"{source.decode_error}; the output has the {summary.frames} frames that decoded"
            if getattr(source, "missing_values", 0):
                print(f"note: {driver}: {source.missing_values} rows had NaN/inf or empty values; the last expression was held there")
            summary.seconds = time.perf_counter() - started
            fps = getattr(source, "frame_rate", None) or frame_rate(source.fps or 25.0)
            has_audio = bool(getattr(source, "has_audio", False))
        if options.assemble:
            summary.audio = self.assemble(driver, out, work, summary.frames, fps, has_audio, options.side_by_side)
        return summary

    def assemble(self, driver: str, out: Path, work: Path, frames: int, fps: Fraction, has_audio: bool,
                 side_by_side_path: Path | None) -> bool:
        """Every frame rendered -> the final file(s), written under temporary names and renamed; then the work folder goes."""
        missing = sorted(set(range(frames)) - _rendered_indices(work))
        if missing:
            raise RetargetError(f"{len(missing)} frames of {driver} are not rendered yet (first: {missing[0]}); run again with --resume")
        first = _read_png(_frame_png(work, 0))
        size = (first.shape[1], first.shape[0])
        audio = Path(driver) if has_audio else None
        if out.suffix == "":
            target = resolved(out)
            staging = target.with_name(f".{target.name}.partial")
            shutil.rmtree(staging, ignore_errors=True)  # ours: a staging folder of an earlier, stopped run
            sink = PngSequenceSink(staging)
            for index in range(frames):
                sink.write(_read_png(_frame_png(work, index)), index=index)
            sink.close()
            replace_folder(staging, target)  # an old folder goes only if we made it (marker) or it is empty
        else:
            with VideoSink(out, fps, size, audio_from=audio) as sink:
                for index in range(frames):
                    sink.write(_read_png(_frame_png(work, index)))
            if sink.audio_error:
                print(f"warning: {out}: audio not copied ({sink.audio_error})")
        if side_by_side_path is not None:
            with open_source(driver) as source, VideoSink(side_by_side_path, fps, _side_size(source, size), audio_from=audio) as sink:
                for frame in source:
                    if frame.index >= frames:
                        break
                    sink.write(side_by_side(frame.image, _read_png(_frame_png(work, frame.index))))
        shutil.rmtree(work, ignore_errors=True)
        return audio is not None


def _side_size(source, output_size: tuple[int, int]) -> tuple[int, int]:
    from retarget.media.sinks import side_by_side_size

    return side_by_side_size(source.size, output_size)


# ---------------------------------------------------------------------------------------- live
@dataclass
class LiveStats:
    input_fps: float = 0.0
    output_fps: float = 0.0
    latency_ms: float = 0.0
    captured: int = 0
    rendered: int = 0
    dropped: int = 0
    skipped: int = 0
    frames_without_face: int = 0


class _Rate:
    """Frames per second over a sliding window of recent events."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: list[float] = []

    def tick(self, now: float) -> float:
        self.times.append(now)
        while self.times and now - self.times[0] > self.window:
            self.times.pop(0)
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


class LatestFrameSlot:
    """Holds at most one frame: a new one replaces the one not yet taken (counted as dropped)."""

    def __init__(self) -> None:
        self._frame = None
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = item
            self._cond.notify()

    def take(self, timeout: float | None = None):
        """The newest item, or None when closed and empty (or on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout=timeout)
            item, self._frame = self._frame, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class LiveSession:
    """Live puppeteering: newest driver frame -> perception -> generator -> on_output(driven, image, stats)."""

    pipeline: object
    context: object
    analyzer: DriverAnalyzer
    settings: GenerationSettings
    source: FrameSource
    on_output: Callable[[DrivenFrame, np.ndarray, LiveStats], None]
    on_error: Callable[[BaseException], None] | None = None
    # A file played "live" is paced at its own frame rate, like a camera.
    pace: bool | None = None
    # Fast live preset: no new generation while the expression moved less than this
    # (mean absolute change of the expression vector since the last generated frame); 0 = always generate.
    min_change: float = 0.0
    stats: LiveStats = field(default_factory=LiveStats)

    def __post_init__(self) -> None:
        self._slot = LatestFrameSlot()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_rate, self._out_rate = _Rate(), _Rate()
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def start(self) -> "LiveSession":
        self._threads = [
            threading.Thread(target=self._capture, daemon=True, name="live-capture"),
            threading.Thread(target=self._render, daemon=True, name="live-render"),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for both threads to end: when this returns, no generate() of this session is
        running, so the pipeline is free for the next stream, and the source is closed under no reader.
        The threads check the stop flag between frames, so this waits at most one generate()."""
        self._stop.set()
        self._slot.close()
        # Every worker ends before the source closes under it (a slow generate is waited for).
        _join_all([t for t in self._threads if t is not threading.current_thread()])
        self.source.close()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def _fail(self, err: BaseException) -> None:
        if self.error is None:
            self.error = err
            if self.on_error is not None:
                self.on_error(err)

    def _capture(self) -> None:
        pace = self.pace if self.pace is not None else not getattr(self.source, "live", False)
        began = time.monotonic()
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                if pace:
                    delay = began + frame.time - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                now = time.monotonic()
                self.stats.captured += 1
                self.stats.input_fps = self._in_rate.tick(now)
                self._slot.put((frame, now))
                self.stats.dropped = self._slot.dropped
        except BaseException as err:  # e.g. a camera unplugged mid-stream
            self._fail(err)
        finally:
            self._slot.close()

    def _render(self) -> None:
        last_image, last_expression = None, None
        try:
            while not self._stop.is_set():
                item = self._slot.take(timeout=0.5)
                if item is None:
                    if self._slot._closed:
                        break
                    continue
                frame, captured_at = item
                driven = self.analyzer(frame, capture_time=captured_at)
                if last_image is not None and np.abs(driven.expression - last_expression).mean() < self.min_change:
                    image = last_image  # the face barely moved: show the last output again
                    self.stats.skipped += 1
                else:
                    image = self.pipeline.generate(self.context, driven.expression[None], self.settings)[0]
                    last_image, last_expression = image, driven.expression
                now = time.monotonic()
                self.stats.rendered += 1
                self.stats.output_fps = self._out_rate.tick(now)
                self.stats.latency_ms = (now - captured_at) * 1000.0
                self.stats.frames_without_face = self.analyzer.frames_without_face
                self.on_output(driven, image, self.stats)
        except BaseException as err:
            self._fail(err)
        finally:
            self.finished.set()
