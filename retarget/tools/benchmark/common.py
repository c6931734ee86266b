"""Timing, memory and environment helpers shared by the benchmarks."""

from __future__ import annotations

import math
import platform
import subprocess
import time

import numpy as np
import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn, device: torch.device, repeat: int = 3, warm_up=...) -> float:
    """Best wall time of `repeat` runs after a warm-up, in seconds.

    The warm-up is `fn` itself unless a cheaper callable (or None, when an
    earlier stage already warmed the same code) is given: a whole offline run
    as warm-up would double the benchmark's time for nothing.
    """
    warm_up = fn if warm_up is ... else warm_up
    if warm_up is not None:
        warm_up()
    sync(device)
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - started)
    return best


def per_call_times(fn, device: torch.device, calls: int) -> list[float]:
    """Wall time of each of `calls` calls (synchronised), in seconds: latencies, not just a mean."""
    times = []
    for i in range(calls):
        started = time.perf_counter()
        fn(i)
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def latency_summary(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"frames": len(ms), "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "min_ms": float(ms.min()), "max_ms": float(ms.max()), "fps_at_median": float(1000 / np.median(ms))}


class TimeBudget:
    """Wall-clock budget of a whole run: measurements ask before they start and are skipped when it is spent."""

    def __init__(self, seconds: float, started: float | None = None):
        self.seconds = seconds
        self.started = time.perf_counter() if started is None else started

    @property
    def used(self) -> float:
        return time.perf_counter() - self.started

    @property
    def left(self) -> float:
        return self.seconds - self.used

    def allows(self, needed_s: float) -> bool:
        return self.left >= needed_s


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device) -> float | None:
    """Peak of torch.cuda.max_memory_allocated since the last reset, in GB (10^9 bytes); None off CUDA."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 1e9


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU ({torch.get_num_threads()} threads)"


def gpu_driver_version() -> str | None:
    """The NVIDIA driver's version from nvidia-smi (None when there is none)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def versions() -> dict:
    import diffusers
    import transformers

    import retarget

    found = {"retarget": retarget.__version__, "torch": torch.__version__, "cuda": torch.version.cuda,
             "diffusers": diffusers.__version__, "transformers": transformers.__version__,
             "python": platform.python_version()}
    for name in ("peft", "accelerate"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = None
    return found
