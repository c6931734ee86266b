"""The one facade the CLI and the app drive: load the models, set the identity and the driver, start and
stop the live stream, render offline (a still, or the resumable video jobs), record.

States and the transitions between them are one table (retarget.session.states.TRANSITIONS); a call that the
current state does not allow raises TransitionRefused, one line that says what to do (REFUSALS). Each slow step has
two halves: `begin_*` moves the state at once on the caller's thread (the app's UI thread sees
"streaming" the moment Start is clicked, and a second click is refused) and returns the slow work,
which runs on any thread: the app runs it on a worker, the CLI calls it at once (`load_models`,
`start_live`, `stop_live` and `render_videos` are exactly that).

Events are plain callbacks (no Qt here): `on(name, fn)`, or `on_event(fn)` for every event as
fn(name, *args). They run on the thread that caused them, so a UI queues them to its own thread:
  state_changed(old, new)       on the thread that made the transition
  driven(DrivenFrame)           live: every perceived driver frame, at the driver's rate (the stream's perception thread)
  frame(FrameResult)            live: the stream's output thread; offline: the render's thread
  stats(LiveStats)              live, after each frame
  progress(done, total)         offline renders, frames rendered so far
  error(message, error, during) a failure; during: "load", "identity", "open" (the driver), "stream" or "render"
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from retarget.config.frame import FrameOptions
from retarget.config.models import ModelOptions
from retarget.errors import RetargetError, user_message
from retarget.session.live_outputs import LiveOutputs
from retarget.session.offline import OfflineRendering
from retarget.session.states import BUSY, TRANSITIONS, EventSource, FrameResult, State, TransitionRefused

IDLE, LOADING, READY, STREAMING, RENDERING = State


class Session(OfflineRendering, EventSource):
    """Models, identity, driver and the one job running on them (a live stream or an offline render)."""

    def __init__(self, keep_rows: bool = True):
        super().__init__()
        self._lock = threading.RLock()  # state changes only; never held across slow work
        self._state = IDLE
        self.retargeter = None
        self.files = None  # ModelFiles of the loaded set
        self.model_options: ModelOptions | None = None  # the loaded models' (--exp-adapter, --ref-lora: part of a render job's key)
        self.identity = None  # IdentityContext
        self.identity_path: Path | None = None
        self.identity_image: np.ndarray | None = None
        self.stream = None  # the engine's LiveStream while it runs
        self.outputs = LiveOutputs(keep_rows)  # recording, virtual camera, run rows: fed every live frame
        self.frame = FrameOptions()  # whole photo or crop: stills, renders and live (set_frame)
        self._live_token: object | None = None  # the stream being opened; None once stopped
        self._stopping = False
        self._render_cancel: threading.Event | None = None

    @classmethod
    def with_retargeter(cls, retargeter, identity=None, files=None) -> "Session":
        """A ready session over models loaded elsewhere (tests, tools that build their own Retargeter)."""
        session = cls()
        session.retargeter, session.identity, session.files = retargeter, identity, files
        session._state = READY
        return session

    # ------------------------------------------------------------------ state and events
    @property
    def state(self) -> State:
        return self._state

    @property
    def opening(self) -> bool:
        """Start was asked and the driver is being opened: streaming, but no frame yet."""
        return self._state is STREAMING and self.stream is None

    @property
    def stopping(self) -> bool:
        return self._state is STREAMING and self._stopping

    @property
    def live_running(self) -> bool:
        """A stream is running and nobody has asked it to stop."""
        return self._state is STREAMING and self.stream is not None and not self._stopping

    @property
    def analyzer(self):
        """The running stream's driver analyzer (perception + mapping), else None."""
        stream = self.stream
        return stream.analyzer if stream is not None else None

    @property
    def stats(self):
        stream = self.stream
        return stream.stats if stream is not None else None

    # ------------------------------------------------------------------ the loaded models, as a UI needs them
    @property
    def adapter_kind(self) -> str | None:
        """What the Expression Adapter takes: "flame55" or "blendshapes52"; None without models."""
        return self.retargeter.pipeline.expression_kind if self.retargeter is not None else None

    @property
    def image_size(self) -> int | None:
        """The generator's square output side in pixels; None without models."""
        return self.retargeter.pipeline.image_size if self.retargeter is not None else None

    @property
    def device(self):
        """The torch.device the generator runs on; None without models."""
        return self.retargeter.pipeline.device if self.retargeter is not None else None

    @property
    def has_lcm(self) -> bool:
        """The LCM-LoRA is loaded (the LCM preset can run)."""
        return self.retargeter is not None and bool(getattr(self.retargeter.pipeline, "has_lcm", False))

    @property
    def bridge(self):
        """The expression bridge (blendshapes -> FLAME-55) the loaded models use, else None."""
        return getattr(self.retargeter, "bridge", None)

    def use_bridge(self, bridge) -> bool:
        """Drive the loaded FLAME-55 adapter through `bridge` (a newly fitted ExpressionBridge) when it was fitted
        for that adapter file; False (nothing changed) for another adapter's bridge or without models."""
        from retarget.expression.bridge import adapter_sha256

        retargeter = self.retargeter
        # The adapter file is hashed outside the lock (a file read); the bridge goes to the models it was checked for.
        if retargeter is None or retargeter.adapter_path is None:
            return False
        if bridge.adapter_sha256 != adapter_sha256(retargeter.adapter_path):
            return False
        with self._lock:
            if self.retargeter is not retargeter:
                return False  # other models were loaded meanwhile
            retargeter.bridge = bridge
            return True

    def _enter(self, new: State) -> None:
        with self._lock:
            old = self._state
            if (old, new) not in TRANSITIONS:
                raise TransitionRefused(old, new)
            self._state = new
            self._emit("state_changed", old, new)

    def _failed(self, during: str, err: BaseException) -> None:
        self._emit("error", user_message(err), err, during)

    def _require_ready(self, doing: str) -> None:
        """Identity changes need the models in and the pipeline free."""
        if self._state is not READY:
            raise RetargetError(f"{BUSY[self._state]}, then {doing}")

    # ------------------------------------------------------------------ models
    def begin_load(self, options: ModelOptions | str | None = None, *, use_reference: bool = True,
                   expression_source: str = "smirk", local_files_only: bool | None = None,
                   progress: Callable[[str], None] | None = None, **fields) -> Callable[[], object]:
        """LOADING now; the returned call loads. A missing file raises MissingModelFile, whose kind names it (a UI offers its fix).

        options: the ModelOptions, passed whole to load_retargeter. A models spec (str) with ModelOptions fields as
        keywords (`begin_load("hub", device="cpu")`) builds them, for callers that hold a few fields only.
        """
        if not isinstance(options, ModelOptions):
            options = ModelOptions(**({"models": options} if options is not None else {}), **fields)
        elif fields:
            options = replace(options, **fields)
        with self._lock:
            self._enter(LOADING)
            old, self.retargeter = self.retargeter, None
            self.identity = None  # an identity embedded by other models or on another device must be redone

        def load():
            try:
                from retarget.session.retargeter import load_retargeter

                retargeter, files = load_retargeter(options, use_reference=use_reference, expression_source=expression_source,
                                                    local_files_only=local_files_only, progress=progress)
            except BaseException as err:
                if old is not None:
                    old.close()
                with self._lock:
                    self._enter(IDLE)
                self._failed("load", err)
                raise
            if old is not None:
                old.close()
            with self._lock:
                self.retargeter, self.files, self.model_options = retargeter, files, options
                self._enter(READY)
            return retargeter

        return load

    def load_models(self, options: ModelOptions | str | None = None, **keywords):
        """Load now (blocking); returns the Retargeter. Arguments: see begin_load."""
        return self.begin_load(options, **keywords)()

    # ------------------------------------------------------------------ identity and driver
    def set_identity(self, photo=None, *, image: np.ndarray | None = None, source: str | None = None,
                     face: int | None = None):
        """Embed the identity (a photo's path, or an image already read); returns its context, or None when
        the models were reloaded meanwhile (the reload's caller embeds it again)."""
        with self._lock:
            self._require_ready("change the identity")
            retargeter = self.retargeter
        try:
            if image is None:
                from retarget.face.image_io import load_image

                image = load_image(photo)
            context = retargeter.identity_from_image(image, source=source or (Path(photo).name if photo else "the identity photo"),
                                                     face=face)
        except BaseException as err:
            self._failed("identity", err)
            raise
        with self._lock:
            if retargeter is not self.retargeter:
                return None
            self.identity, self.identity_image = context, image
            self.identity_path = Path(photo) if photo is not None else None
            self.outputs.placement = getattr(context, "placement", None)
        return context

    # ------------------------------------------------------------------ output frame
    def set_frame(self, options: FrameOptions) -> None:
        """Whole photo (the face pasted back) or the aligned crop, for what renders next and, at once, the live stream
        (its screen frames and virtual camera; a running recording keeps its size and fits the new frame into it)."""
        options.validate()
        self.frame = options
        self.outputs.frame = options

    def frame_note(self, source: str | None = None) -> str | None:
        """One line when full-frame output enlarges the generated face (the face in the photo is larger), else None."""
        placement = getattr(self.identity, "placement", None)
        if self.frame.frame != "full" or placement is None or self.retargeter is None:
            return None
        return placement.note(self.image_size, source or "the identity photo")

    def output_size(self) -> tuple[int, int]:
        """(width, height) of the frames the outputs get now: the photo's in full frame, else the generator's square."""
        self.outputs.placement = getattr(self.identity, "placement", None)
        return self.outputs.frame_size(self.image_size)

    # ------------------------------------------------------------------ live
    def begin_live(self, driver, *, settings, mapping=None, analyzer=None, neutral_raw=None, pace=None,
                   min_change: float = 0.0, face: int | None = None) -> Callable[[], object]:
        """STREAMING now; the returned call opens the driver (a busy camera or a broken video fails there), builds
        the analyzer and starts the stream; it returns the engine's LiveStream, or None when stopped meanwhile."""
        from retarget.engine import LiveStream

        with self._lock:
            if self._state is READY and self.identity is None:
                raise RetargetError("Choose an identity photo first")
            spec = str(driver)
            self._enter(STREAMING)
            token = self._live_token = object()
            retargeter, context = self.retargeter, self.identity
            self.outputs.placement = getattr(context, "placement", None)  # full frame: this identity's photo
            self.outputs.rows = []

        def open_and_start():
            try:
                from retarget.media.sources import open_source

                source = open_source(spec)
                try:
                    stream_analyzer = analyzer or retargeter.driver_analyzer(
                        mapping, identity_neutral=context.blendshapes, identity_flame=context.flame, face=face)
                except BaseException:
                    source.close()
                    raise
            except BaseException as err:
                with self._lock:
                    if self._live_token is token:
                        self._live_token = None
                        self._enter(READY)
                self._failed("open", err)
                raise
            with self._lock:
                if self._live_token is not token:  # stopped while it opened: nothing may keep running
                    source.close()
                    stream_analyzer.close()
                    return None
                if neutral_raw is not None:
                    stream_analyzer.set_neutral_from(neutral_raw)
                # The pipeline is read now: whatever the retargeter holds at Start (tests slow it down).
                self.stream = LiveStream(retargeter.pipeline, context, stream_analyzer, settings, source,
                                          on_output=self._live_output, on_error=self._live_error, pace=pace,
                                          min_change=min_change, on_driven=self._live_driven)
                self.stream.start()
                return self.stream

        return open_and_start

    def start_live(self, driver, **options):
        return self.begin_live(driver, **options)()

    def _live_driven(self, driven) -> None:  # the stream's perception thread, before any output exists
        self._emit("driven", driven)

    def _live_output(self, driven, image, stats) -> None:  # the stream's output thread
        shown = self.outputs.write(driven, image)  # in the chosen frame (the face pasted back, or the crop)
        self._emit("frame", FrameResult(shown, driven, stats))
        self._emit("stats", stats)

    def _live_error(self, err: BaseException) -> None:  # a stream thread
        if not isinstance(err, StopIteration):  # the end of a file is not a failure
            self._failed("stream", err)

    def begin_stop(self) -> Callable[[], None]:
        """Mark the stream stopping now; the returned call stops it and returns once its last generate() is over
        (so the pipeline is free), then the session is READY. While the driver still opens, it is READY at once."""
        with self._lock:
            if self._state is not STREAMING:
                raise RetargetError("No live stream is running")
            if self._stopping:
                raise RetargetError("The live stream is already stopping")
            if self.stream is None:
                self._live_token = None  # the opening call closes what it opened
                self._enter(READY)
                return lambda: None
            self._stopping, stream = True, self.stream

        def stop():
            try:
                stream.stop()
                stream.analyzer.close()
            finally:
                with self._lock:
                    self.stream, self._stopping, self._live_token = None, False, None
                    self._enter(READY)

        return stop

    def stop_live(self) -> None:
        self.begin_stop()()

    def set_generation(self, settings) -> None:
        """New generation settings for the running stream (it reads them every frame; the swap is atomic)."""
        stream = self.stream
        if stream is not None:
            stream.settings = settings

    def set_mapping(self, mapping, neutral_raw=None) -> bool:
        """A new mapper for the running stream: its landmarker and SMIRK keep running. False when nothing streams."""
        analyzer = self.analyzer
        if analyzer is None or not self.live_running:
            return False
        analyzer.set_mapping(mapping)
        if mapping.relative and neutral_raw is not None:
            analyzer.set_neutral_from(neutral_raw)
        return True

    def set_neutral_from(self, raw) -> None:
        analyzer = self.analyzer
        if analyzer is None:
            raise RetargetError("Set neutral needs a live driver with a face in view")
        analyzer.set_neutral_from(raw)

    # ------------------------------------------------------------------ record
    def start_recording(self, path, size: int | tuple[int, int] | None = None, video=None):
        """Record the live output to `path` (each frame at its capture time); before Start too, so a sink that
        cannot open fails before a camera is opened. Its size: `size`, else the output frame's now. Returns the TimedVideoSink."""
        if self._state not in (READY, STREAMING):
            self._require_ready("record")
        return self.outputs.start_recording(Path(path), size or self.output_size(), video)

    def stop_recording(self):
        """Stop feeding the recording; returns (sink, stop time) for the caller to close (encoder flush: slow)."""
        return self.outputs.take_recorder()

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Stop a stream, then let the models go (IDLE). A running render or load refuses: cancel or wait first."""
        if self._state is STREAMING and not self._stopping:
            self.stop_live()
        with self._lock:
            if self._state is IDLE:
                return
            self._enter(IDLE)
            retargeter, self.retargeter, self.identity = self.retargeter, None, None
        if retargeter is not None:
            retargeter.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
