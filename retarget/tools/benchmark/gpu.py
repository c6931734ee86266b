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
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from retarget.tools.benchmark import measures
from retarget.tools.benchmark.common import (TimeBudget, best_time, device_description, gpu_driver_version, per_call_times,
                                       versions)
from retarget.tools.benchmark.runner import BenchRun, GpuBenchOptions
from retarget.config.generation import preset_settings

TINY_VAE_LIVE = "lcm+taesd"  # the live target's configuration: LCM 4 steps, TAESD decode


def run_gpu_benchmark(models: str, device: torch.device, dtype: torch.dtype, options: GpuBenchOptions,
                      log=print, started: float | None = None) -> dict:
    """Resolve (build) the models, load them, measure everything; the temporary folder goes however it ends."""
    budget = TimeBudget(options.budget_s, started)
    results = _empty_results(models, device, dtype, options)
    with tempfile.TemporaryDirectory(prefix="retarget-bench-gpu-") as work:
        _measure_all(results, Path(work), models, device, dtype, options, budget, log)
    results["budget"]["used_s"] = round(budget.used, 1)
    from retarget.tools.benchmark.report import evaluate_targets

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
    from retarget.weights.assets import resolve_models
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
    run = BenchRun(pipe, files, device, options, budget, results, log)
    run.compile_sections_left = _compile_sections(options)
    run.checkpoint()

    run.work, run.full_size = work, full_size
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

    results["perception"] = run.attempt("perception", "perception", 5, lambda: _perception(run), reserve=False)
    _eager(run)  # the UNet, the baseline, quality offline at each batch size
    results["psnr"] = run.attempt("psnr", "fp16 vs fp32 PSNR", 30 if device.type == "cuda" else 5, lambda: _psnr(run, dtype))
    _presets(run, lcm=False)
    results["channels_last"] = run.attempt("channels_last", "channels_last", 15 if device.type == "cuda" else 2, lambda: _channels_last(run))
    # The LCM-LoRA's layers cost time even while it is off, so it is loaded only now, after everything that does
    # not use it, as a user without --lcm-lora runs (the compiled quality figure below has it loaded, switched off).
    _presets(run, lcm=True)
    _compiled(run)


def _perception(run: BenchRun) -> dict:
    """Decode + MediaPipe + mapping frames/s on a real driver video; needs PyAV, MediaPipe and --driver."""
    options = run.options
    try:
        import av  # noqa: F401
        import mediapipe  # noqa: F401
    except ImportError as err:
        return run.skipped("perception", f"{err.name or 'PyAV/MediaPipe'} is not installed here: live latency is the "
                                         "generator's alone")
    if options.driver is None:
        return run.skipped("perception", "no --driver video with a face: live latency is the generator's alone")
    from retarget.engine.driving import DriverAnalyzer
    from retarget.engine import perception_stream
    from retarget.face.landmarker import find_landmarker_model
    from retarget.media.sources import open_source

    with open_source(str(options.driver)) as source, \
            DriverAnalyzer("blendshapes52", find_landmarker_model(options.landmarker)) as analyzer:
        started = time.perf_counter()
        frames = len(list(perception_stream(source, analyzer)))
        fps = frames / (time.perf_counter() - started)
    return {"fps": fps, "ms_per_frame": 1000 / fps, "frames": frames, "driver": str(options.driver)}


def _eager(run: BenchRun) -> None:
    results, pipe, options = run.results, run.pipe, run.options
    unet = results["unet"]
    quality = preset_settings("quality")

    def flops():
        with torch.no_grad():  # as in generate: the reference keys/values come from the identity's cache
            conditioning = pipe.conditioning(run.context, torch.from_numpy(run.expressions[:1]), quality, fused=True)
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
            context = pipe.prepare_identity(run.embedding, run.reference_image)  # a new context: nothing cached
            pipe.generate(context, run.expressions[i:i + 1], quality)

        one(0)  # warm-up of the same code; not counted
        seconds = sum(per_call_times(one, run.device, frames))
        return {"offline_fps": frames / seconds, "frames": frames, "steps": quality.steps, "batch": 1}

    results["baseline"] = run.attempt("baseline", "baseline", 5, baseline)

    offline = results["offline"]
    offline["quality"] = {"eager": {f"batch_{b}": run.attempt("offline", f"offline quality batch {b}", 5,
                                                               lambda b=b: run.offline(quality, b))
                                    for b in options.batch_sizes}}


def _presets(run: BenchRun, lcm: bool) -> None:
    """Live latency of each preset (for the LCM ones, first the live target's configuration with TAESD) and its
    offline frames/s at the largest batch; `lcm` picks the presets that sample with the LCM-LoRA."""
    results, pipe, options = run.results, run.pipe, run.options
    live, offline = results["live"], results["offline"]
    for name in (*options.presets, TINY_VAE_LIVE):
        live.setdefault(name, {})  # table order
    if lcm:
        def live_tiny_vae():
            run.ensure_lcm_lora()
            pipe.tiny_vae = run.taesd
            try:
                return run.live(preset_settings("lcm"))
            finally:
                pipe.tiny_vae = None

        live[TINY_VAE_LIVE]["eager"] = run.attempt("live_tiny_vae", "live lcm + TAESD", 5, live_tiny_vae)
    biggest = max(options.batch_sizes)
    for name in options.presets:
        settings = preset_settings(name)
        if (settings.sampler == "lcm") != lcm:
            continue

        def measure_live(s=settings):
            if lcm:
                run.ensure_lcm_lora()
            return run.live(s)

        def measure_offline(s=settings):
            if lcm:
                run.ensure_lcm_lora()
            return run.offline(s, biggest)

        live[name]["eager"] = run.attempt("live", f"live {name}", 5, measure_live)
        if name != "quality":
            offline[name] = {"eager": {f"batch_{biggest}": run.attempt(
                "offline", f"offline {name} batch {biggest}", 5, measure_offline)}}


def _seconds_per_frame(results: dict, steps: int) -> float:
    """A frame's time at batch 1 from the UNet step already measured (a guess of 1 s when none was)."""
    step = results["unet"].get("step", {}).get("eager", {}).get("batch_1", {}).get("ms")
    return steps * step / 1000 if step else 1.0


def _psnr(run: BenchRun, dtype: torch.dtype) -> dict:
    """Reduced precision against fp32 on the same inputs (quality preset, one seed per image)."""
    from retarget.pipeline import RetargetPipeline

    reduced = dtype if dtype != torch.float32 else (torch.float16 if run.device.type == "cuda" else torch.bfloat16)
    pipes = {dtype: run.pipe}
    other = torch.float32 if dtype != torch.float32 else reduced
    pipes[other] = RetargetPipeline.from_files(run.files, run.device, other)
    try:
        images = {precision: _seeded_images(run, pipe, precision == torch.float32) for precision, pipe in pipes.items()}
    finally:
        del pipes[other]  # the second pipeline's memory goes before anything else is measured
        gc.collect()
        if run.device.type == "cuda":
            torch.cuda.empty_cache()
    values = [measures.psnr_db(a, b) for a, b in zip(images[reduced], images[torch.float32])]
    return {"reduced": str(reduced).replace("torch.", ""), "reference": "float32 (TF32 off)", "preset": "quality",
            "seeds": list(range(run.options.psnr_seeds)), "psnr_db": values, "min_db": min(values),
            "mean_db": float(np.mean(values))}


def _seeded_images(run: BenchRun, pipe, full_precision: bool) -> list:
    context = pipe.prepare_identity(run.embedding, run.reference_image)
    with measures.FullPrecision() if full_precision else nullcontext():
        return [pipe.generate(context, run.expressions[s:s + 1], replace(preset_settings("quality"), seed=s))[0]
                for s in range(run.options.psnr_seeds)]


def _channels_last(run: BenchRun) -> dict:
    """NHWC for the UNet and VAE: the step and quality offline at the largest batch; then back to the default layout."""
    biggest = max(run.options.batch_sizes)
    run.pipe.enable_channels_last()
    try:
        return {"unet_step": run.unet_step(biggest),
                "offline_quality": run.offline(preset_settings("quality"), biggest)}
    finally:
        for module in (run.pipe.unet, run.pipe.vae):
            module.to(memory_format=torch.contiguous_format)


def _compile_sections(options: GpuBenchOptions) -> int:
    """How many compile measurements are to run (each keeps time in reserve while the eager ones run)."""
    return sum(key not in options.skip for key in ("compiled_live", "compiled_offline"))


def _compiled(run: BenchRun) -> None:
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
        run.ensure_lcm_lora()
        compile_once()
        pipe.tiny_vae = run.taesd
        try:
            return run.live(preset_settings("lcm"), warm_up_calls=3)  # compile, then CUDA graph capture
        finally:
            pipe.tiny_vae = None

    # The live target's compile comes first: it gets the time held back, the offline one what is left.
    run.compile_sections_left = 0
    results["live"].setdefault(TINY_VAE_LIVE, {})["compiled"] = run.attempt(
        "compiled_live", "compiled live lcm + TAESD", run.per_compile_s, live)

    def offline():
        compile_once()
        biggest = max(run.options.batch_sizes)
        figure = run.offline(preset_settings("quality"), biggest, warm_up_calls=2)
        step = results["unet"].get("step")
        if not isinstance(step, dict) or "skipped" in step or "error" in step:  # the eager steps were not measured
            step = results["unet"]["step"] = {}
        step["compiled"] = {f"batch_{biggest}": run.unet_step(biggest)}
        return figure

    biggest = max(run.options.batch_sizes)
    results["offline"].setdefault("quality", {})["compiled"] = {
        f"batch_{biggest}": run.attempt("compiled_offline", "compiled offline quality", run.per_compile_s, offline)}
