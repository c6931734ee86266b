"""Offline rendering: every frame of a driver with one identity, resumable, output in source order.

Four stages overlap, each on its own thread behind bounded queues: decoding and MediaPipe
(stages.perception_stream), the generator (the caller's thread) and the PNG writer (stages.FrameWriter),
so perception of the next frames and the writing of the last ones happen while a batch generates.
Rendered frames land one PNG each (fast compression) in the work folder beside the output, which is what
makes a stopped job resumable; the final file is assembled (video + the source's audio) under a
temporary name and renamed only when complete.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from retarget.engine.driving import DriverAnalyzer, DrivenFrame
from retarget.engine.stages import FrameWriter, perception_stream
from retarget.engine.time_range import TimeRange, frame_seconds
from retarget.engine.work_folder import WorkFolder, work_dir_for, work_lock_for
from retarget.config.render import RenderOptions, VideoOptions
from retarget.errors import BadInputError, JobInterrupted, RetargetError
from retarget.expression.signals import check_signal, driver_signal
from retarget.names.kinds import OUTPUT_VIDEO_SUFFIXES
from retarget.media.png_sequence import PngSequenceSink
from retarget.media.side_by_side import side_by_side
from retarget.media.video_sink import VideoSink
from retarget.media.source_info import SourceInfo
from retarget.media.sources import open_source
from retarget.outputs import check_folder_target, check_output, replace_folder, resolved
from retarget.config.generation import GenerationSettings


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

    Files are identified by content (cache.content_id), not by path: an adapter retrained in place is a new job.
    `models` (ModelFiles) adds the content of the weight files the pipeline loads.
    """
    from retarget.cache import content_id, file_sha256

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


def _driver_fingerprint(spec: str) -> dict:
    from retarget.cache import content_id

    path = Path(spec)
    if path.is_file() or path.is_dir():  # by content: a driver swapped for another of the same size and mtime is another job
        return {"driver": str(path.resolve()), "content": content_id(path)}
    return {"driver": str(spec)}


class OfflineRenderer:
    """Renders every frame of a driver with one identity; resumable; output in source order."""

    def __init__(self, pipeline, context, make_analyzer: Callable[[], DriverAnalyzer], settings: GenerationSettings,
                 job_key: dict | None = None, mapping=None, place: Callable[[np.ndarray], np.ndarray] | None = None):
        self.pipeline = pipeline
        self.context = context
        self.make_analyzer = make_analyzer
        self.settings = settings
        self.job_key = job_key or {}
        self.mapping = mapping  # the analyzers' MappingSettings, when the caller knows them
        self.adapter_file: Path | None = None  # the Expression Adapter file, when known (retarget.expression.signals)
        # Generated crops -> the output frame (e.g. pasted into the identity photo: retarget.face.paste); the
        # job key must name it (FrameOptions.job_key), since another frame is another output.
        self.place = place

    def mapping_settings(self):
        """The mapping the analyzers use, without building one (which may load SMIRK) when it is known."""
        if self.mapping is not None:
            return self.mapping
        with self.make_analyzer() as analyzer:
            return analyzer.mapping

    def manifest(self, driver: str, mapping, options: RenderOptions | None = None) -> dict:
        """What the work folder is for; with the job's options, another CSV rate or time range is another job."""
        extra = {}
        if options is not None:
            extra = {**({"fps": options.fps} if options.fps else {}), **TimeRange.of(options).job_key()}
        return {
            "version": 1,
            **_driver_fingerprint(driver),
            "settings": asdict(self.settings),
            "mapping": asdict(mapping) if mapping is not None else None,
            **self.job_key,
            **extra,
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
            check_side_by_side_name(options.side_by_side)
            check_output(options.side_by_side, {"the driver": driver, "--out": out}, "--side-by-side")
        if png_output:
            check_folder_target(out)
        if not options.lock:
            return self._render(driver, out, options, cancel, on_frame, rank)
        with work_lock_for(out):
            fresh = not os.path.lexists(work_dir_for(out))
            try:
                return self._render(driver, out, options, cancel, on_frame, rank)
            except (JobInterrupted, KeyboardInterrupt):
                raise  # stopped: what was rendered stays for --resume
            except Exception:
                _drop_empty_work_folder(out, fresh)
                raise

    def _render(self, driver: str, out: Path, options: RenderOptions, cancel, on_frame, rank: int) -> JobSummary:
        source = open_source(driver, fps=options.fps)  # probes: a bad driver fails here, before anything is written
        with source:
            clip = TimeRange.of(options)
            _check_source(source, driver, options, clip)
            work, analyzer = self._prepare_work(driver, out, options)
            job = _FrameBatches(self, work, JobSummary(driver=str(driver), output=str(out), rank=rank), options, on_frame)
            if options.resume:
                # Placed frames (full frame) are the photo's size; the job key already tells full from crop.
                size = getattr(self.pipeline, "image_size", None) if self.place is None else None
                job.summary.rerendered = work.drop_unreadable_frames(job.done, size)
            started = time.perf_counter()
            job.run(source, analyzer, clip, cancel, total=clip.frame_count(source), name=Path(str(driver)).name)
            summary = job.summary
            _note_source_faults(source, driver, summary, clip)
            summary.seconds = time.perf_counter() - started
            info = SourceInfo.of(source, driver)  # after decoding: a video's frame count is then known for sure
        if options.assemble:
            summary.audio = self.assemble(driver, out, work.path, summary.frames, info.rate, info.has_audio,
                                          options.side_by_side, options.video, first=job.first or 0,
                                          audio_start=job.first_seconds, driver_frames=info.frame_count)
        return summary

    def _prepare_work(self, driver: str, out: Path, options: RenderOptions) -> tuple[WorkFolder, DriverAnalyzer]:
        """The job's analyzer and work folder, after the adapter is known to take the driver's signal."""
        work = WorkFolder.for_output(out)
        analyzer = self.make_analyzer()
        try:
            # Before the work folder exists: a driver the adapter cannot take leaves nothing behind.
            check_signal(analyzer.expression_kind, driver_signal(driver), self.adapter_file, str(driver),
                         bridge_available=getattr(analyzer, "bridge", None) is not None,
                         expression_source=getattr(analyzer.mapping, "expression_source", "smirk"))
            # Another output rate for a CSV, or another time range, is another job (other frames).
            work.prepare(self.manifest(driver, analyzer.mapping, options), options.resume)
        except BaseException:
            analyzer.close()
            raise
        return work, analyzer

    def assemble(self, driver: str, out: Path, work: Path, frames: int, fps: Fraction, has_audio: bool,
                 side_by_side_path: Path | None, video: VideoOptions | None = None, *, first: int = 0,
                 audio_start: float = 0.0, driver_frames: int | None = None) -> bool:
        """Every frame rendered -> the final file(s), written under temporary names and renamed; then the work folder goes.

        A time range: output frame 0 is driver frame `first`, at `audio_start` seconds (where the audio is cut from)."""
        work = WorkFolder(work)
        missing = sorted(set(range(frames)) - work.rendered_indices())
        if missing:
            raise RetargetError(f"{len(missing)} frames of {driver} are not rendered yet (first: {missing[0]}); run again with --resume")
        first_image = work.read_frame(0)
        size = (first_image.shape[1], first_image.shape[0])
        audio = Path(driver) if has_audio else None
        if out.suffix == "":
            target = resolved(out)
            staging = target.with_name(f".{target.name}.partial")
            shutil.rmtree(staging, ignore_errors=True)  # ours: a staging folder of an earlier, stopped run
            sink = PngSequenceSink(staging)
            for index in range(frames):
                sink.write(work.read_frame(index), index=index)
            sink.close()
            replace_folder(staging, target)  # an old folder goes only if we made it (marker) or it is empty
        else:
            span = (first, driver_frames, audio_start)
            with _video_sink(driver, frames, out, fps, size, audio, video, span) as sink:
                for index in range(frames):
                    sink.write(work.read_frame(index))
            if sink.audio_error:
                print(f"warning: {out}: audio not copied ({sink.audio_error})")
        if side_by_side_path is not None:
            with open_source(driver) as source, _video_sink(driver, frames, side_by_side_path, fps, _side_size(source, size),
                                                           audio, video, (first, driver_frames, audio_start)) as sink:
                for frame in source:
                    if frame.index < first:
                        continue
                    if frame.index - first >= frames:
                        break
                    sink.write(side_by_side(frame.image, work.read_frame(frame.index - first)))
            if sink.audio_error:
                print(f"warning: {side_by_side_path}: audio not copied ({sink.audio_error})")
        work.remove()
        return audio is not None


def _check_source(source, driver: str, options: RenderOptions, clip: TimeRange) -> None:
    if source.frame_count == 0:
        raise BadInputError(f"{driver}: has no frames")
    if options.side_by_side is not None and source.size is None:
        raise BadInputError(f"{driver}: has no pictures to put beside the output (--side-by-side)")
    clip.check(source, driver)


class _FrameBatches:
    """One job's perceived frames on their way out: the time range and --frames range applied, frames already
    in the work folder reused, the rest generated in batches and handed to the writer thread."""

    def __init__(self, renderer: OfflineRenderer, work: WorkFolder, summary: JobSummary, options: RenderOptions,
                 on_frame) -> None:
        self.renderer, self.summary, self.options, self.on_frame = renderer, summary, options, on_frame
        self.work, self.done = work, work.rendered_indices()
        self.start, self.stop = options.frame_range or (0, None)
        self.pending: list[DrivenFrame] = []
        # The range's first driver frame is output frame 0 (work-folder frames are numbered as the output's).
        self.first: int | None = None
        self.first_seconds = 0.0
        self.writer = FrameWriter(work.write_frame)  # never the generator's thread: it goes back to the GPU
        self.bar = None

    def run(self, source, analyzer: DriverAnalyzer, clip: TimeRange, cancel, total, name: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=name, unit="frame", disable=not self.options.progress, initial=0,
                        dynamic_ncols=True)
        try:
            with analyzer:
                for frame in perception_stream(source, analyzer):
                    if cancel is not None and cancel.is_set():
                        raise KeyboardInterrupt
                    seconds = frame_seconds(source, frame)
                    if clip.before(seconds):
                        continue  # perceived all the same: smoothing and calibration match a whole render
                    if clip.after(seconds):
                        break
                    self.add(frame, seconds)
                self.flush()
                self.summary.frames_without_face = analyzer.frames_without_face
            self.writer.close()
        except KeyboardInterrupt:
            self.writer.close(raise_failure=False)  # the frames rendered so far are kept for --resume
            raise JobInterrupted(
                f"stopped after {len(self.work.rendered_indices())} rendered frames; run the same command with --resume to continue"
            ) from None
        finally:
            self.writer.close(raise_failure=False)
            self.bar.close()

    def add(self, frame: DrivenFrame, seconds: float) -> None:
        if self.first is None:
            self.first, self.first_seconds = frame.index, seconds
        self.summary.frames += 1
        index = frame.index - self.first
        if index < self.start or (self.stop is not None and index >= self.stop):
            return
        if index in self.done:
            self.summary.reused += 1
            self.bar.update(1)
            return
        self.pending.append(frame)
        if len(self.pending) >= self.options.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        renderer, pending = self.renderer, self.pending
        images = renderer.pipeline.generate(
            renderer.context, np.stack([f.expression for f in pending]), renderer.settings,
            frame_indices=[f.index for f in pending],
        )
        if renderer.place is not None:
            images = renderer.place(images)  # the whole batch at once
        for frame, image in zip(pending, images):
            self.writer.put(frame.index - self.first, image)
            if self.on_frame is not None:
                self.on_frame(frame, image)
        self.summary.rendered += len(pending)
        self.bar.update(len(pending))
        pending.clear()


def _note_source_faults(source, driver: str, summary: JobSummary, clip: TimeRange) -> None:
    """What the driver lacked, on the summary (or as a note); a range that held no frame is refused."""
    summary.skipped_inputs = source.skipped
    if source.decode_error:
        summary.incomplete = f"{source.decode_error}; the output has the {summary.frames} frames that decoded"
    if source.missing_values:
        print(f"note: {driver}: {source.missing_values} rows had NaN/inf or empty values; the last expression was held there")
    if summary.frames == 0 and not clip.whole:
        raise BadInputError(f"--start {clip.start:g} --end {clip.end if clip.end is not None else 'end'}: "
                            f"no frame of {driver} lies in that range (seconds from its first frame)")


def _video_sink(driver: str, frames: int, path: Path, fps: Fraction, size, audio, video, span=(0, None, 0.0)):
    """A variable-frame-rate video driver keeps its frame times (StampedVideoSink); others get a constant rate.
    span: (the driver frame output frame 0 shows, the driver's frame count, that frame's time) of a time range."""
    from retarget.names.kinds import media_kind
    from retarget.media.video_source import variable_frame_times
    from retarget.media.video_sink import StampedVideoSink

    first, driver_frames, audio_start = span
    driver_frames = driver_frames or frames
    timing = variable_frame_times(driver, driver_frames) if media_kind(driver) == "video" else None
    if timing is not None:
        times, last_duration = timing
        stop = first + frames
        if stop < len(times):  # a range ending early: its last frame lasts until the next one
            last_duration = times[stop] - times[stop - 1]
        return StampedVideoSink(path, times[first:stop], size, last_duration, audio_from=audio, video=video,
                                audio_start=audio_start)
    return VideoSink(path, fps, size, audio_from=audio, video=video, audio_start=audio_start)
def check_side_by_side_name(path) -> None:
    """--side-by-side is always a video: a name without a video suffix cannot be written (no format to pick)."""
    if Path(path).suffix.lower() not in OUTPUT_VIDEO_SUFFIXES:
        raise BadInputError(f"--side-by-side {path}: use a video name ({', '.join(OUTPUT_VIDEO_SUFFIXES)})")


def _drop_empty_work_folder(out: Path, fresh: bool) -> None:
    """A refused job leaves nothing: a work folder this run made and rendered no frame into goes."""
    work = WorkFolder.for_output(out)
    if fresh and work.path.is_dir() and not work.path.is_symlink() and not work.rendered_indices():
        work.remove()


def _side_size(source, output_size: tuple[int, int]) -> tuple[int, int]:
    from retarget.media.side_by_side import side_by_side_size

    return side_by_side_size(source.size, output_size)


