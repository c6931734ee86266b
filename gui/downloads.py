"""The download dialog: `retarget download` in the window, with per-file progress (bytes, rate, ETA) and Cancel.

huggingface_hub reports each file's bytes through a tqdm class it is given; ours counts them into
a thread-safe snapshot that the dialog polls, and raises DownloadCancelled from inside the
transfer when Cancel is pressed. Finished files stay, and huggingface_hub resumes a partial one,
so "Download" again continues where it stopped.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout
from tqdm.auto import tqdm

from gui.workers import Task
from retarget.errors import user_message


class DownloadCancelled(BaseException):
    """Raised inside the transfer on Cancel; a BaseException so that no library turns it into a download error."""


class ProgressCounter:
    """What the transfer thread reports and the UI reads: current file, bytes done/total, files done."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cancel = threading.Event()
        self.name = ""
        self.done = 0
        self.total = 0
        self.files = 0
        self.started = time.monotonic()

    def begin(self, name: str, total: int | None) -> None:
        with self.lock:
            self.name, self.done, self.total, self.started = name, 0, int(total or 0), time.monotonic()

    def add(self, n: int) -> None:
        if self.cancel.is_set():
            raise DownloadCancelled()
        with self.lock:
            self.done += n

    def snapshot(self) -> tuple[str, int, int, float]:
        with self.lock:
            return self.name, self.done, self.total, time.monotonic() - self.started

    def tqdm_class(self):
        """A tqdm subclass (huggingface_hub's tqdm_class) that reports into this counter, printing nothing."""
        counter = self

        class _Reporting(tqdm):
            def __init__(self, *args, **kwargs):
                kwargs["disable"] = True  # no terminal bar: the dialog shows the progress
                super().__init__(*args, **kwargs)
                counter.begin(str(kwargs.get("desc") or ""), kwargs.get("total"))

            def update(self, n=1):
                counter.add(int(n or 0))

        return _Reporting


def describe(done: int, total: int, seconds: float) -> str:
    """'12.0 of 3400.0 MB, 8.1 MB/s, 6:58 left' (parts that cannot be measured yet are left out)."""
    mb = 1e6
    text = f"{done / mb:.1f} of {total / mb:.1f} MB" if total else f"{done / mb:.1f} MB"
    if seconds > 0.5 and done > 0:
        rate = done / seconds
        text += f", {rate / mb:.1f} MB/s"
        if total > done:
            left = (total - done) / rate
            text += f", {int(left // 60)}:{int(left % 60):02d} left"
    return text


def _file_lines(counter: ProgressCounter) -> Callable[[str], None]:
    """The downloaders' progress lines into the counter: "[n/m] file" starts a file; other lines
    (licences, files already present) are shown without counting as a file."""

    def line_seen(line: str) -> None:
        if re.match(r"\[\d+/\d+\] ", line):
            with counter.lock:
                counter.files += 1
        counter.begin(line, None)

    return line_seen


def models_download(to: Path) -> Callable[[ProgressCounter], Path]:
    """The published set into a models folder (retarget.weights.assets.download_models), reporting into the counter."""

    def run(counter: ProgressCounter) -> Path:
        from retarget.weights.assets import download_models

        return download_models(to, progress=_file_lines(counter), tqdm_class=counter.tqdm_class())

    return run


def hub_cache_download() -> Callable[[ProgressCounter], object]:
    """The `hub` model set into the Hugging Face cache (the first run of --models hub), reporting into the counter."""

    def run(counter: ProgressCounter):
        from retarget.weights.assets import resolve_models

        return resolve_models("hub", progress=_file_lines(counter), tqdm_class=counter.tqdm_class())

    return run


class DownloadDialog(QDialog):
    """Runs a download on a worker thread; shows the file, a byte progress bar, rate and ETA; Cancel stops it."""

    finished_with = pyqtSignal(str, object)  # "done" | "cancelled" | "failed", result or error text

    def __init__(self, title: str, download: Callable[[ProgressCounter], object], total_files: int = 0, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(520)
        self.counter = ProgressCounter()
        self.total_files = total_files
        self.outcome: str | None = None
        layout = QVBoxLayout(self)
        self.file_label = QLabel("Starting...")
        self.file_label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.rate_label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.rate_label, 1)
        row.addWidget(self.cancel_button)
        layout.addWidget(self.file_label)
        layout.addWidget(self.bar)
        layout.addLayout(row)
        self._poll = QTimer(self, interval=200)
        self._poll.timeout.connect(self._refresh)
        self._task = Task(lambda: download(self.counter), self, "download")
        self._task.succeeded.connect(lambda result: self._end("done", result))
        self._task.failed.connect(self._failed)

    def start(self) -> "DownloadDialog":
        self._task.start()
        self._poll.start()
        return self

    def cancel(self) -> None:
        self.counter.cancel.set()
        self.cancel_button.setEnabled(False)
        self.file_label.setText("Cancelling (finished files are kept)...")

    def reject(self) -> None:  # Esc or the close box: cancel, and close once the transfer has stopped
        if self.outcome is None:
            self.cancel()
        else:
            super().reject()

    def _refresh(self) -> None:
        name, done, total, seconds = self.counter.snapshot()
        if self.counter.cancel.is_set():
            return
        files = f"file {self.counter.files} of {self.total_files}: " if self.total_files else ""
        self.file_label.setText(f"{files}{name}" if name else "Starting...")
        if total > 0:
            # QProgressBar holds ints: count in KB so multi-GB files fit
            self.bar.setRange(0, max(1, total // 1000))
            self.bar.setValue(min(done, total) // 1000)
        else:
            self.bar.setRange(0, 0)
        self.rate_label.setText(describe(done, total, seconds))

    def _failed(self, err) -> None:
        if isinstance(err, DownloadCancelled) or self.counter.cancel.is_set():
            self._end("cancelled", "Download cancelled; finished files are kept: Download again to continue")
        else:
            self._end("failed", user_message(err))

    def _end(self, outcome: str, result) -> None:
        self._poll.stop()
        self._refresh()
        self.outcome = outcome
        self.finished_with.emit(outcome, result)
        self.accept() if outcome == "done" else super().reject()

    def wait(self, ms: int = 30000) -> bool:
        return self._task.wait(ms)
