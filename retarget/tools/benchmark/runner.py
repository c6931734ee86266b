"""The measuring machinery of `retarget bench gpu`: options, the time budget's bookkeeping (skips, errors,
a JSON checkpoint after each measurement) and the timed loops (live latency, offline throughput, UNet step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from retarget.tools.benchmark import GPU_MEASUREMENTS
from retarget.tools.benchmark.common import (TimeBudget, best_time, latency_summary, peak_memory_gb, per_call_times,
                                       reset_peak_memory, sync)
from retarget.errors import first_line
from retarget.config.generation import PRESETS, preset_settings


@dataclass
class GpuBenchOptions:
    batch_sizes: tuple[int, ...] = (1, 4, 8)
    offline_frames: int = 16  # per offline measurement (rounded up to whole batches)
    live_frames: int = 60  # per live latency measurement (at least 50 on a GPU for a p95)
    baseline_frames: int = 8
    psnr_seeds: int = 5
    budget_s: float = 450.0
    compile_reserve_s: float | None = None  # kept free for each compile measurement; default by device
    presets: tuple[str, ...] = tuple(PRESETS)
    lcm_lora: str | None = None
    tiny_vae: str | None = None
    driver: Path | None = None
    landmarker: Path | None = None
    skip: tuple[str, ...] = ()
    json_path: Path | None = None  # rewritten after every section, so a killed run keeps what it measured


@dataclass
class BenchRun:
    """One `bench gpu` run's state: the loaded pipeline and identity, the budget, and the timed loops."""

    pipe: object
    files: object
    device: torch.device
    options: GpuBenchOptions
    budget: TimeBudget
    results: dict
    log: object
    context: object = None
    embedding: np.ndarray | None = None
    reference_image: np.ndarray | None = None
    expressions: np.ndarray | None = None
    taesd: object = None
    compile_sections_left: int = 2
    work: Path | None = None  # where random LCM-LoRA / TAESD weights are written
    full_size: bool = True

    def ensure_lcm_lora(self) -> None:
        """Load the LCM-LoRA on first use (hub copy, --lcm-lora, or random weights in its layout)."""
        if self.pipe.has_lcm:
            return
        from retarget.tools.benchmark import measures

        started = time.perf_counter()
        source = measures.lcm_lora_source(self.options.lcm_lora, self.files.unet.parent, self.work, self.full_size,
                                          self.results["notes"])
        self.pipe.load_lcm_lora(source)
        setup = self.results["setup"]
        setup["lcm_lora_s"] = time.perf_counter() - started
        setup["lcm_lora"] = "random (see notes)" if source.startswith(str(self.work)) else source
        self.results["notes"].append("the LCM-LoRA was loaded after the measurements that do not use it (its layers "
                                     "cost time even when off); the compiled quality figure has it loaded, off")

    @property
    def per_compile_s(self) -> float:
        """Time one compile measurement needs, warm-up included: SD 1.5's UNet compiles in about 1-2 min on a GPU."""
        reserve = self.options.compile_reserve_s
        return reserve if reserve is not None else (120.0 if self.device.type == "cuda" else 20.0)

    @property
    def compile_reserve(self) -> float:
        return self.per_compile_s * self.compile_sections_left

    def attempt(self, key: str, name: str, needed_s: float, fn, reserve: bool = True):
        """Run one measurement (`key` from GPU_MEASUREMENTS) if --skip and the budget allow; a failure is recorded, not raised."""
        assert key in GPU_MEASUREMENTS, key
        if key in self.options.skip:
            return self.skipped(name, "--skip")
        held_back = self.compile_reserve if reserve else 0.0
        if not self.budget.allows(needed_s + held_back):
            return self.skipped(name, f"time budget: {self.budget.left:.0f} s left, about {needed_s:.0f} s needed"
                                      + (f" plus {held_back:.0f} s kept for compilation" if held_back else ""))
        self.log(f"{name} ...")
        try:
            return fn()
        except Exception as err:  # one broken measurement must not cost the whole GPU run
            message = f"{type(err).__name__}: {first_line(err, 300)}"
            self.log(f"{name} failed: {message}")
            self.results["errors"].append({"measurement": name, "error": message})
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return {"error": message}
        finally:
            self.checkpoint()

    def skipped(self, name: str, reason: str) -> dict:
        self.log(f"{name} skipped: {reason}")
        self.results["skipped"].append({"measurement": name, "reason": reason})
        return {"skipped": reason}

    def checkpoint(self) -> None:
        """The figures so far, targets included, to --json: a run killed at its time limit keeps them."""
        from retarget.tools.benchmark.report import evaluate_targets
        from retarget.outputs import write_json

        self.results["budget"]["used_s"] = round(self.budget.used, 1)
        self.results["targets"] = evaluate_targets(self.results)
        if self.options.json_path is not None:
            write_json(self.options.json_path, self.results)

    def frames_that_fit(self, seconds_per_unit: float, wanted: int, minimum: int) -> int:
        """As many units as wanted, fewer when the budget (less the compile reserve) is short, never under minimum."""
        spare = self.budget.left - self.compile_reserve
        fit = int(spare / max(seconds_per_unit, 1e-6))
        return max(min(wanted, fit), min(minimum, wanted))

    # ------------------------------------------------------------------ measurements
    def generate(self, settings, start: int, count: int):
        return self.pipe.generate(self.context, self.expressions[start:start + count], settings)

    def live(self, settings, warm_up_calls: int = 1) -> dict:
        """Latency of one frame at a time (batch 1): expression in, uint8 image on the host out."""
        n = len(self.expressions)
        reset_peak_memory(self.device)
        started = time.perf_counter()
        for i in range(warm_up_calls):
            self.generate(settings, i % n, 1)
        sync(self.device)
        warm_up_s = time.perf_counter() - started
        one = min(per_call_times(lambda i: self.generate(settings, i % n, 1), self.device, 1))
        wanted = self.options.live_frames
        frames = self.frames_that_fit(one, wanted, minimum=50)
        summary = latency_summary(per_call_times(lambda i: self.generate(settings, i % n, 1), self.device, frames))
        summary.update(warm_up_s=warm_up_s, peak_memory_gb=peak_memory_gb(self.device))
        if frames < wanted:
            summary["note"] = f"{frames} of {wanted} frames: time budget"
        return summary

    def offline(self, settings, batch: int, warm_up_calls: int = 1) -> dict:
        """Frames/s of the generator over whole batches (perception runs on its own threads in the engine)."""
        reset_peak_memory(self.device)
        started = time.perf_counter()
        for _ in range(warm_up_calls):
            self.generate(settings, 0, batch)
        sync(self.device)
        warm_up_s = time.perf_counter() - started
        wanted = -(-self.options.offline_frames // batch)
        batches = self.frames_that_fit(warm_up_s / warm_up_calls, wanted, minimum=1)
        started = time.perf_counter()
        for b in range(batches):
            self.generate(settings, (b * batch) % max(1, len(self.expressions) - batch + 1), batch)
        sync(self.device)
        elapsed = time.perf_counter() - started
        return {"fps": batches * batch / elapsed, "frames": batches * batch, "batch": batch, "steps": settings.steps,
                "warm_up_s": warm_up_s, "peak_memory_gb": peak_memory_gb(self.device)}

    def unet_step(self, batch: int, repeat: int = 3) -> dict:
        settings = preset_settings("quality")
        with torch.no_grad():  # as in generate: the reference keys/values come from the identity's cache
            conditioning = self.pipe.conditioning(self.context, torch.from_numpy(self.expressions[:batch]), settings, fused=True)
        latents = self.pipe.noise_for(settings, batch).to(self.device)
        t = torch.tensor(500, device=self.device)

        def step():
            with torch.no_grad():
                self.pipe.noise_prediction(latents, t, conditioning)

        seconds = best_time(step, self.device, repeat)
        flops = self.results["unet"].get("flops_per_frame_step_cfg")
        figure = {"ms": 1000 * seconds, "frames": batch, "unet_batch": 2 * batch}
        if flops:
            achieved = batch * flops / seconds / 1e12
            figure["achieved_tflops"] = achieved
            peak = self.results["unet"].get("matmul_peak_tflops")
            if peak:
                figure["fraction_of_matmul_peak"] = achieved / peak
                figure["lower_bound_ms"] = 1000 * batch * flops / (peak * 1e12)
        return figure
