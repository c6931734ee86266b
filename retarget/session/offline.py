"""The session's offline half: a still (from a driver photo or an explicit expression vector) and the
resumable video jobs, each moving the session to RENDERING and back to READY (a mixin of Session: it uses
the session's lock, state table and events)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from retarget.errors import JobInterrupted, RetargetError
from retarget.face.paste import frame_output
from retarget.session.states import FrameResult, State

READY, RENDERING = State.READY, State.RENDERING


class OfflineRendering:
    """Session's render calls; `_begin_render`/`_end_render` bracket each one with the state change."""

    def _begin_render(self) -> tuple:
        with self._lock:
            if self._state is READY and self.identity is None:
                raise RetargetError("Choose an identity photo first")
            self._enter(RENDERING)
            self._render_cancel = threading.Event()
            return self.retargeter, self.identity, self._render_cancel

    def _end_render(self, err: BaseException | None) -> None:
        with self._lock:
            self._render_cancel = None
            self._enter(READY)
        if err is not None and not isinstance(err, JobInterrupted):  # a cancel is not a failure
            self._failed("render", err)

    def cancel_render(self) -> None:
        """The render stops between frames, keeping what it rendered (the same job resumes it)."""
        cancel = self._render_cancel
        if cancel is not None:
            cancel.set()

    def run_exclusive(self, work):
        """work() on the loaded models with the session RENDERING meanwhile (no stream or render shares the
        pipeline), e.g. fitting the expression bridge; no identity needed. Returns work()'s result."""
        with self._lock:
            if self.retargeter is None:
                raise RetargetError("Load the models first")
            self._enter(RENDERING)  # refused unless READY
        try:
            return work()  # its failure is the caller's to show (the calibration dialog says it)
        finally:
            with self._lock:
                self._enter(READY)

    def render_expressions(self, expressions: np.ndarray, *, settings, progress: bool = False,
                           frame_indices=None) -> np.ndarray:
        """Expression vectors (N, D), e.g. composed by hand -> N images of the identity, as one render.
        frame_indices: each vector's frame in a video (its seeded noise), so a preview matches that frame's render."""
        retargeter, context, _ = self._begin_render()
        error = None
        try:
            return retargeter.render(context, np.asarray(expressions), settings, progress=progress, frame_indices=frame_indices)
        except BaseException as err:
            error = err
            raise
        finally:
            self._end_render(error)

    def render_still(self, driver_image: np.ndarray | None, out=None, *, settings, mapping=None,
                     source: str = "the driver", progress: bool = False,
                     expression: np.ndarray | None = None, face: int | None = None) -> np.ndarray:
        """One driver image (or an explicit expression vector, e.g. composed by hand) -> one output image in the
        session's frame (set_frame: the identity photo with the face pasted back, or the crop), written to `out`
        when given, under a temporary name first."""
        retargeter, context, _ = self._begin_render()
        frame, error = self.frame, None
        try:
            self._emit("progress", 0, 1)
            if expression is None:
                expression = retargeter.expression_from_image(driver_image, source=source, mapping=mapping,
                                                              identity_neutral=context.blendshapes, face=face)
            image = retargeter.render(context, expression[None], settings, progress=progress)
            image = frame_output(image, getattr(context, "placement", None), frame.frame, frame.colour_match)[0]
            if out is not None:
                from retarget.outputs import write_image

                write_image(out, image)
            self._emit("frame", FrameResult(image))
            self._emit("progress", 1, 1)
            return image
        except BaseException as err:
            error = err
            raise
        finally:
            self._end_render(error)

    def begin_render(self, drivers, out, *, settings, mapping, options, batch: bool = False, neutral=None,
                     state=None, auto_resume: bool = False, driver_face: int | None = None, follow_box=None,
                     key_extra: dict | None = None, probed: dict | None = None) -> Callable[[], list]:
        """RENDERING now; the returned call renders every frame of each driver (retarget.engine.jobs: resumable, one
        driver or a batch, split across processes under accelerate) and returns the JobSummary list.
        auto_resume: continue what an earlier, stopped render of this same job left (the app's Render).
        probed: {driver: SourceInfo} the caller already read (retarget.media.source_info), so no driver is reopened."""
        from retarget.engine import WorkFolder

        drivers, out = [Path(d) for d in drivers], Path(out)
        retargeter, context, cancel = self._begin_render()
        identity_path, files, loaded = self.identity_path, self.files, self.model_options
        exp_adapter, ref_lora = (loaded.exp_adapter, loaded.ref_lora) if loaded is not None else (None, None)
        frame = self.frame

        def render():
            from retarget.engine.jobs import offline_renderer, run_video_jobs
            from retarget.media.source_info import probe_source

            error, done = None, [0]
            try:
                if identity_path is None:
                    raise RetargetError("a video render needs the identity photo's file (its content names the job)")
                renderer = offline_renderer(retargeter, context, identity_path, files, settings, mapping, neutral,
                                            exp_adapter, ref_lora, driver_face=driver_face, follow_box=follow_box,
                                            key_extra={**(key_extra or {}), **frame.job_key()})  # full != crop
                placement = getattr(context, "placement", None)
                renderer.place = lambda images: frame_output(images, placement, frame.frame, frame.colour_match)
                total = 0
                if self._handlers["progress"] or self._any:  # probing every driver costs: only for someone listening
                    from retarget.engine.time_range import TimeRange

                    for driver in drivers:
                        info = (probed or {}).get(str(driver)) or probe_source(str(driver), fps=options.fps)
                        total += TimeRange.of(options).frame_count(info) or 0
                    self._emit("progress", 0, total)
                job_options = options
                if auto_resume and not batch and not options.resume:
                    resume = WorkFolder.for_output(out).holds(renderer.manifest(str(drivers[0]), mapping, options))
                    job_options = replace(options, resume=resume)

                def on_frame(driven, image):
                    done[0] += 1
                    self._emit("frame", FrameResult(image, driven))
                    self._emit("progress", done[0], total)

                return run_video_jobs(renderer, drivers, batch, out, job_options, state=state, cancel=cancel, on_frame=on_frame)
            except BaseException as err:
                error = err
                raise
            finally:
                self._end_render(error)

        return render

    def render_videos(self, drivers, out, **options) -> list:
        return self.begin_render(drivers, out, **options)()
