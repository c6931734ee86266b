"""`retarget bench gpu`: every figure the performance targets need, in one process, under a time budget.

Measurements run in order of importance; one that the budget cannot fit is skipped and listed in
the JSON's `skipped`, one that fails is listed in `errors` (the run goes on). Compilation is one-way
(a compiled UNet stays compiled), so everything eager is measured first. On a CPU the same code
path runs (compile through the "eager" backend, which captures graphs without generating code).
The random weights it times with are named in `notes`.
"""

from __future__ import annotations

import gc
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from retarget.benchmark import GPU_MEASUREMENTS, measures
from retarget.benchmark.common import (TimeBudget, best_time, device_description, gpu_driver_version,
                                       latency_summary, peak_memory_gb, per_call_times, reset_peak_memory, sync,
                                       versions)
from retarget.settings import PRESETS, preset_settings

TINY_VAE_LIVE = "lcm+taesd"  # the live target's configuration: LCM 4 steps, TAESD decode


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
class _Run:
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

    @property
    def compile_reserve(self) -> float:
        reserve = self.options.compile_reserve_s
        if reserve is None:
            reserve = 150.0 if self.device.type == "cuda" else 20.0
        return reserve * self.compile_sections_left

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
            message = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300] if str(err).strip() else ''}"
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
        self.results["budget"]["used_s"] = round(self.budget.used, 1)
        if self.options.json_path is not None:
            from retarget.benchmark.common import write_json

            write_json(self.results, self.options.json_path)

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
        conditioning = self.pipe.conditioning(self.context, torch.from_numpy(self.expressions[:batch]), settings)
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


def run_gpu_benchmark(models: str, device: torch.device, dtype: torch.dtype, options: GpuBenchOptions,
                      log=print, started: float | None = None) -> dict:
    """Resolve (build) the models, load them, measure everything; the temporary folder goes however it ends."""
    budget = TimeBudget(options.budget_s, started)
    results = _empty_results(models, device, dtype, options)
    with tempfile.TemporaryDirectory(prefix="retarget-bench-gpu-") as work:
        _measure_all(results, Path(work), models, device, dtype, options, budget, log)
    results["budget"]["used_s"] = round(budget.used, 1)
    from retarget.benchmark.report import evaluate_targets

    results["targets"] = evaluate_targets(results)
    return results


def _empty_results(models: str, device: torch.device, dtype: torch.dtype, options: GpuBenchOptions) -> dict:
    gpu = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = {"name": props.name, "driver": gpu_driver_version(), "memory_gb": props.total_memory / 1e9,
               "multiprocessors": props.multi_processor_count}
    return {
        "benchmark": "retarget bench gpu",
        "device": device_description(device),
        "gpu": gpu,
        "versions": versions(),
        "models": models,
        "dtype": str(dtype).replace("torch.", ""),
        "options": {k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v)
                    for k, v in vars(options).items() if k != "json_path"},
        "notes": [],
        "budget": {"seconds": options.budget_s, "used_s": 0.0},
        "skipped": [],
        "errors": [],
        "setup": {},
        "perception": {},
        "unet": {},
        "baseline": {},
        "offline": {},
        "live": {},
        "psnr": {},
        "channels_last": {},
        "compiled": {},
        "targets": [],
    }


def _measure_all(results, work, models, device, dtype, options, budget, log) -> None:
    from retarget.assets import resolve_models
    from retarget.pipeline import RetargetPipeline

    setup = results["setup"]
    started = time.perf_counter()
    files = resolve_models(models, progress=log)
    setup["build_or_find_models_s"] = time.perf_counter() - started
    results["models"] = files.description
    if files.is_test_model:
        results["notes"].append(f"models: {files.description}: random weights in the published layouts; "
                                "timings do not depend on weight values, images are noise")
    started = time.perf_counter()
    pipe = RetargetPipeline.from_files(files, device, dtype)
    setup["load_pipeline_s"] = time.perf_counter() - started
    setup["image_size"] = pipe.image_size
    full_size = pipe.vae_scale_factor == 8
    run = _Run(pipe, files, device, options, budget, results, log)
    run.compile_sections_left = _compile_sections_from(options, 0)
    run.checkpoint()

    started = time.perf_counter()
    lcm = measures.lcm_lora_source(options.lcm_lora, files.unet.parent, work, full_size, results["notes"])
    pipe.load_lcm_lora(lcm)
    setup["lcm_lora_s"] = time.perf_counter() - started
    setup["lcm_lora"] = "random (see notes)" if lcm.startswith(str(work)) else lcm
    taesd = measures.tiny_vae_source(options.tiny_vae, work, full_size, results["notes"])
    pipe.use_tiny_vae(taesd)
    run.taesd, pipe.tiny_vae = pipe.tiny_vae, None  # the full VAE unless a measurement asks for TAESD
    setup["tiny_vae"] = "random (see notes)" if taesd.startswith(str(work)) else taesd

    rng = np.random.default_rng(0)
    run.embedding = rng.normal(size=512).astype(np.float32)
    run.embedding /= np.linalg.norm(run.embedding)
    run.reference_image = rng.integers(0, 256, (pipe.image_size, pipe.image_size, 3), dtype=np.uint8)
    count = max(options.live_frames, options.offline_frames, max(options.batch_sizes), options.psnr_seeds, 8)
    run.expressions = (rng.normal(size=(count, pipe.exp_dim or 1)) * 0.3).astype(np.float32)
    setup["identity_context_ms"] = 1000 * best_time(
        lambda: pipe.prepare_identity(run.embedding, run.reference_image), device, 2)
    run.context = pipe.prepare_identity(run.embedding, run.reference_image)
    run.checkpoint()

    results["perception"] = run.attempt("perception", "perception", 5, lambda: _perception(options), reserve=False)
    _eager(run)
    results["psnr"] = run.attempt("psnr", "fp16 vs fp32 PSNR", 30 if device.type == "cuda" else 5, lambda: _psnr(run, dtype))
    results["channels_last"] = run.attempt("channels_last", "channels_last", 15 if device.type == "cuda" else 2, lambda: _channels_last(run))
    _compiled(run)


def _perception(options: GpuBenchOptions) -> dict:
    """Decode + MediaPipe + mapping frames/s on a real driver video; needs av, mediapipe and --driver."""
    try:
        import av  # noqa: F401
        import mediapipe  # noqa: F401
    except ImportError as err:
        return {"skipped": f"{err.name or 'av/mediapipe'} not installed here: live latency below is the generator's alone"}
    if options.driver is None:
        return {"skipped": "no --driver video with a face: live latency below is the generator's alone"}
    from retarget.driving import DriverAnalyzer
    from retarget.engine import perception_stream
    from retarget.face.landmarker import find_landmarker_model
    from retarget.media.sources import open_source

    with open_source(str(options.driver)) as source, \
            DriverAnalyzer("blendshapes52", find_landmarker_model(options.landmarker)) as analyzer:
        started = time.perf_counter()
        frames = len(list(perception_stream(source, analyzer)))
        fps = frames / (time.perf_counter() - started)
    return {"fps": fps, "ms_per_frame": 1000 / fps, "frames": frames, "driver": str(options.driver)}


def _eager(run: _Run) -> None:
    results, pipe, options = run.results, run.pipe, run.options
    unet = results["unet"]
    quality = preset_settings("quality")

    def flops():
        conditioning = pipe.conditioning(run.context, torch.from_numpy(run.expressions[:1]), quality)
        total = measures.unet_step_flops(pipe, conditioning, pipe.noise_for(quality, 1).to(run.device))
        unet.update(flops_per_frame_step_cfg=total, tflop_per_frame_step_cfg=total / 1e12,
                    tflop_per_unet_eval=total / 2e12,
                    flops_note="one 512x512 frame, one step, CFG (2 UNet evaluations), Reference Adapter attending")
        unet["matmul_peak_tflops"] = measures.matmul_peak_tflops(run.device, pipe.dtype)
        return {"eager": {f"batch_{b}": run.unet_step(b) for b in options.batch_sizes}}

    unet["step"] = run.attempt("unet", "UNet FLOPs and step", 10, flops)

    def baseline():
        """The published demo's structure: per frame a reference pass and a pipeline call, batch 1, nothing cached."""
        frames = run.frames_that_fit(2 * _seconds_per_frame(results, quality.steps), options.baseline_frames, 1)

        def one(i):
            context = pipe.prepare_identity(run.embedding, run.reference_image)
            pipe.bank.clear_cache()
            pipe.generate(context, run.expressions[i:i + 1], quality)

        one(0)  # warm-up of the same code; not counted
        seconds = sum(per_call_times(one, run.device, frames))
        return {"offline_fps": frames / seconds, "frames": frames, "steps": quality.steps, "batch": 1}

    results["baseline"] = run.attempt("baseline", "baseline", 5, baseline)

    offline = results["offline"]
    offline["quality"] = {"eager": {f"batch_{b}": run.attempt("offline", f"offline quality batch {b}", 5,
                                                               lambda b=b: run.offline(quality, b))
                                    for b in options.batch_sizes}}
    biggest = max(options.batch_sizes)
    for name in options.presets:
        settings = preset_settings(name)
        results["live"][name] = {"eager": run.attempt("live", f"live {name}", 5, lambda s=settings: run.live(s))}
        if name != "quality":
            offline[name] = {"eager": {f"batch_{biggest}": run.attempt(
                "offline", f"offline {name} batch {biggest}", 5, lambda s=settings: run.offline(s, biggest))}}

    def live_tiny_vae():
        pipe.tiny_vae = run.taesd
        try:
            return run.live(preset_settings("lcm"))
        finally:
            pipe.tiny_vae = None

    results["live"][TINY_VAE_LIVE] = {"eager": run.attempt("live_tiny_vae", "live lcm + TAESD", 5, live_tiny_vae)}


def _seconds_per_frame(results: dict, steps: int) -> float:
    """A frame's time at batch 1 from the UNet step already measured (a guess of 1 s when none was)."""
    step = results["unet"].get("step", {}).get("eager", {}).get("batch_1", {}).get("ms")
    return steps * step / 1000 if step else 1.0


def _psnr(run: _Run, dtype: torch.dtype) -> dict:
    """Reduced precision against fp32 on the same inputs (quality preset, one seed per image)."""
    from retarget.pipeline import RetargetPipeline

    reduced = dtype if dtype != torch.float32 else (torch.float16 if run.device.type == "cuda" else torch.bfloat16)
    pipes = {dtype: run.pipe}
    other = torch.float32 if dtype != torch.float32 else reduced
    pipes[other] = RetargetPipeline.from_files(run.files, run.device, other)
    images = {}
    try:
        for precision, pipe in pipes.items():
            context = pipe.prepare_identity(run.embedding, run.reference_image)
            with measures.FullPrecision() if precision == torch.float32 else nullcontext():
                images[precision] = [pipe.generate(context, run.expressions[s:s + 1],
                                                   replace(preset_settings("quality"), seed=s))[0]
                                     for s in range(run.options.psnr_seeds)]
    finally:
        del pipes[other]
        gc.collect()
        if run.device.type == "cuda":
            torch.cuda.empty_cache()
    values = [measures.psnr_db(a, b) for a, b in zip(images[reduced], images[torch.float32])]
    return {"reduced": str(reduced).replace("torch.", ""), "reference": "float32 (TF32 off)", "preset": "quality",
            "seeds": list(range(run.options.psnr_seeds)), "psnr_db": values, "min_db": min(values),
            "mean_db": float(np.mean(values))}


def _channels_last(run: _Run) -> dict:
    """NHWC for the UNet and VAE: the step and quality offline at the largest batch; then back to the default layout."""
    biggest = max(run.options.batch_sizes)
    run.pipe.enable_channels_last()
    try:
        return {"unet_step": run.unet_step(biggest),
                "offline_quality": run.offline(preset_settings("quality"), biggest)}
    finally:
        for module in (run.pipe.unet, run.pipe.vae):
            module.to(memory_format=torch.contiguous_format)


def _compile_sections_from(options: GpuBenchOptions, index: int) -> int:
    """How many compile measurements from the index-th on are still to run (each keeps time in reserve)."""
    return sum(key not in options.skip for key in ("compiled_live", "compiled_offline")[index:])


def _compiled(run: _Run) -> None:
    """torch.compile (CUDA graphs on CUDA): the live target's configuration first, then quality offline."""
    results, pipe, device = run.results, run.pipe, run.device
    compiled = results["compiled"]
    eager_fps = results["offline"].get("quality", {}).get("eager", {}).get(f"batch_{max(run.options.batch_sizes)}", {})
    layout = results["channels_last"].get("offline_quality", {}).get("fps", 0) > eager_fps.get("fps", float("inf"))
    compiled["layout"] = "channels_last" if layout else "default"
    compiled["backend"] = "inductor, mode reduce-overhead (CUDA graphs)" if device.type == "cuda" else \
        "eager (graph capture only; a CPU check of the path, not a speed figure)"
    state = {"compiled": False}

    def compile_once():
        if not state["compiled"]:
            if layout:
                pipe.enable_channels_last()
            pipe.enable_compile() if device.type == "cuda" else pipe.enable_compile(backend="eager")
            state["compiled"] = True

    def live():
        compile_once()
        pipe.tiny_vae = run.taesd
        try:
            return run.live(preset_settings("lcm"), warm_up_calls=3)  # compile, then CUDA graph capture
        finally:
            pipe.tiny_vae = None

    run.compile_sections_left = _compile_sections_from(run.options, 1)
    results["live"][TINY_VAE_LIVE]["compiled"] = run.attempt("compiled_live", "compiled live lcm + TAESD", 10, live)

    def offline():
        compile_once()
        biggest = max(run.options.batch_sizes)
        figure = run.offline(preset_settings("quality"), biggest, warm_up_calls=2)
        results["unet"].setdefault("step", {})["compiled"] = {f"batch_{biggest}": run.unet_step(biggest)}
        return figure

    run.compile_sections_left = _compile_sections_from(run.options, 2)
    biggest = max(run.options.batch_sizes)
    results["offline"].setdefault("quality", {})["compiled"] = {
        f"batch_{biggest}": run.attempt("compiled_offline", "compiled offline quality", 10 if device.type == "cuda" else 2, offline)}
