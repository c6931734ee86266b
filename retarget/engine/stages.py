"""Threaded stages: decoding and perception on their own threads behind bounded queues.

A stage hands its results on (blocking while the consumer is busy) and passes an exception to
the consumer, which re-raises it on its own thread; stopping drains the queues so no producer
stays blocked, and every worker is joined before its source or analyzer may close.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

from retarget.engine.driving import DriverAnalyzer, DrivenFrame
from retarget.media.sources import FrameSource

_END = object()


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
        join_all(threads, (decoded, driven))


def join_all(threads: list[threading.Thread], queues=()) -> None:
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


class FrameWriter:
    """Stores rendered frames on its own thread, behind a bounded queue: the generator's thread hands a frame
    on and goes back to the GPU while the PNG is compressed and written (it waits only when `depth` frames
    are queued). A write that fails is raised on the generator's thread at its next put, or at close."""

    def __init__(self, write: Callable[[int, object], None], depth: int = 8):
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="frame-writer")
        self._thread.start()

    def put(self, index: int, image) -> None:
        while True:
            self._raise_failure()
            try:
                self._queue.put((index, image), timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self, raise_failure: bool = True) -> None:
        """Write what is queued, end the thread; then raise its failure (unless the caller is already failing)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_END)  # the writer always drains, so this returns
            self._thread.join()
        if raise_failure:
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is not None:
                continue  # after a failure: drain, write nothing more
            try:
                self._write(*item)
            except BaseException as err:  # handed to the generator's thread
                self._error = err
