"""`retarget bench`: per-stage timings, end-to-end throughput and live latency per preset, and the
published demo's structure as a baseline measured in the same run. Figures only; nothing asserted.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from retarget.tools.benchmark.common import best_time as _timed
from retarget.tools.benchmark.common import device_description, versions
from retarget.media.frame_source import DEFAULT_FPS
from retarget.config.models import ModelOptions
from retarget.config.generation import GenerationSettings, PRESETS, preset_settings


def _synthetic_video(path: Path, frames: int, size: int = 512) -> Path:
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def run_benchmark(files, models: ModelOptions, device: torch.device, dtype: torch.dtype, driver: Path | None = None,
                  identity: Path | None = None, frames: int = 8, batch_size: int = 4, presets: list[str] | None = None,
                  repeat: int = 2, log=print) -> dict:
    """Every stage timed on `files` (resolved from `models`, whose landmarker, LCM-LoRA and tiny VAE it uses too)."""
    presets = presets or list(PRESETS)
    results: dict = {
        "device": device_description(device),
        "versions": versions(),
        "models": files.description,
        "dtype": str(dtype).replace("torch.", ""),
        "frames": frames,
        "batch_size": batch_size,
        "stages": {},
        "presets": {},
    }
    with tempfile.TemporaryDirectory(prefix="retarget-bench-") as work:  # removed however the run ends
        _measure(results, Path(work), files, device, dtype, driver, identity, models.landmarker, frames, batch_size,
                 presets, repeat, log, models.lcm_lora, models.tiny_vae)
    return results


@dataclass
class _Bench:
    """What every timed step shares: the pipeline, the identity's inputs and the expressions it renders."""

    pipe: object
    device: torch.device
    repeat: int
    frames: int
    batch_size: int
    embedding: np.ndarray
    reference_image: np.ndarray
    expressions: np.ndarray
    context: object = None


def _measure(results, work, files, device, dtype, driver, identity, landmarker, frames, batch_size, presets, repeat,
             log, lcm_lora, tiny_vae) -> None:
    stages = results["stages"]
    video = driver or _synthetic_video(work / "synthetic.mp4", max(frames, 25))
    results["driver"] = str(driver) if driver else "synthetic 512x512 noise video (no face)"
    _measure_perception(stages, video, landmarker, log)
    log("loading models ...")
    bench = _load_bench(files, device, dtype, lcm_lora, identity, frames, batch_size, repeat)
    log("identity context ...")
    pipe = bench.pipe
    stages["identity_context_ms"] = 1000 * _timed(lambda: pipe.prepare_identity(bench.embedding, bench.reference_image),
                                                  device, repeat)
    bench.context = pipe.prepare_identity(bench.embedding, bench.reference_image)
    _measure_generator(stages, bench, work, tiny_vae, log)
    perception_ms = 1000.0 / stages["decode_perception_mapping_fps"]
    for name in presets:
        log(f"preset {name} ...")
        results["presets"][name] = _measure_preset(bench, name, perception_ms, stages["decode_perception_mapping_fps"])
    log("baseline (published demo structure: per frame a reference pass and a pipeline call, batch 1, nothing cached) ...")
    results["baseline"] = _measure_baseline(bench)
    quality_fps = results["presets"].get("quality", {}).get("offline_fps")
    if quality_fps:
        results["baseline"]["speedup_quality_vs_baseline"] = quality_fps / results["baseline"]["offline_fps"]
    if device.type == "cuda":
        results["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30


def _measure_perception(stages: dict, video: Path, landmarker, log) -> None:
    """Decoding alone, decoding with MediaPipe perception and mapping, and the mapping step on its own."""
    from retarget.engine.driving import DriverAnalyzer
    from retarget.engine import perception_stream
    from retarget.expression.mapping import ExpressionMapper
    from retarget.face.landmarker import find_landmarker_model
    from retarget.media.sources import open_source

    log("decode ...")
    with open_source(str(video)) as source:
        started = time.perf_counter()
        decoded = [f for f in source]
        stages["decode_fps"] = len(decoded) / (time.perf_counter() - started)
        fps = source.fps or DEFAULT_FPS
    log("perception ...")
    analyzer_path = find_landmarker_model(landmarker)
    with open_source(str(video)) as source, DriverAnalyzer("blendshapes52", analyzer_path) as analyzer:
        started = time.perf_counter()
        driven = list(perception_stream(source, analyzer))
        stages["decode_perception_mapping_fps"] = len(driven) / (time.perf_counter() - started)
    mapper = ExpressionMapper()
    samples = [d.blendshapes for d in driven]
    started = time.perf_counter()
    for i, s in enumerate(samples):
        mapper(s, i / fps)
    stages["mapping_ms_per_frame"] = 1000 * (time.perf_counter() - started) / max(1, len(samples))


def _load_bench(files, device, dtype, lcm_lora, identity, frames, batch_size, repeat) -> _Bench:
    """The pipeline, a random unit identity embedding, the reference photo (or noise) and random expressions."""
    from retarget.pipeline import RetargetPipeline

    pipe = RetargetPipeline.from_files(files, device, dtype)
    if lcm_lora:
        pipe.load_lcm_lora(lcm_lora)
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=512).astype(np.float32)
    embedding /= np.linalg.norm(embedding)
    if identity is not None:
        from retarget.face.image_io import load_image

        reference_image = load_image(identity)
    else:
        reference_image = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    exp_dim = pipe.exp_dim or 1
    expressions = rng.normal(size=(frames, exp_dim)).astype(np.float32) * 0.3
    return _Bench(pipe, device, repeat, frames, batch_size, embedding, reference_image, expressions)


def _measure_generator(stages: dict, bench: _Bench, work: Path, tiny_vae, log) -> None:
    """One UNet step (batch, CFG), the VAE decode (and TAESD's when asked), and the video encode per frame."""
    from retarget.media.video_sink import VideoSink

    pipe, device, repeat, batch_size = bench.pipe, bench.device, bench.repeat, bench.batch_size
    settings = GenerationSettings()
    with torch.no_grad():  # as in generate: the reference keys/values come from the identity's cache
        conditioning = pipe.conditioning(bench.context, torch.from_numpy(bench.expressions[:batch_size]), settings,
                                         fused=True)
    latents = pipe.noise_for(settings, batch_size).to(device)

    def one_step():
        with torch.no_grad():
            pipe.noise_prediction(latents, torch.tensor(500, device=device), conditioning)

    log("UNet step ...")
    stages["unet_step_ms"] = 1000 * _timed(one_step, device, repeat)
    stages["unet_step_batch"] = batch_size
    with torch.no_grad():
        decoded_latents = pipe.noise_for(settings, batch_size).to(device, torch.float32)
    stages["vae_decode_ms_per_frame"] = 1000 * _timed(lambda: pipe.decode(decoded_latents), device, repeat) / batch_size
    if tiny_vae:
        pipe.use_tiny_vae(tiny_vae)
        stages["tiny_vae_decode_ms_per_frame"] = 1000 * _timed(lambda: pipe.decode(decoded_latents), device, repeat) / batch_size
        pipe.tiny_vae = None  # presets below are timed with the full VAE, as the paper decodes
    image = pipe.generate(bench.context, bench.expressions[:1], GenerationSettings(steps=1))[0]

    def encode():
        with VideoSink(work / "encode.mp4", 25, (image.shape[1], image.shape[0])) as sink:
            for _ in range(bench.frames):
                sink.write(image)

    stages["encode_ms_per_frame"] = 1000 * _timed(encode, device, 1) / bench.frames


def _measure_preset(bench: _Bench, name: str, perception_ms: float, perception_fps: float) -> dict:
    pipe, context, expressions, frames, batch_size = bench.pipe, bench.context, bench.expressions, bench.frames, bench.batch_size
    settings = preset_settings(name)

    def offline():
        for start in range(0, frames, batch_size):
            pipe.generate(context, expressions[start:start + batch_size], settings)

    # One batch warms up this preset's scheduler and shapes (compilation included).
    offline_s = _timed(offline, bench.device, 1, warm_up=lambda: pipe.generate(context, expressions[:batch_size], settings))
    live_s = _timed(lambda: pipe.generate(context, expressions[:1], settings), bench.device, bench.repeat)
    return {
        "steps": settings.steps,
        "cfg": settings.cfg,
        "trade": PRESETS[name].trade,
        "offline_fps": min(frames / offline_s, perception_fps),
        "live_latency_ms": 1000 * live_s + perception_ms,
        "live_fps": 1.0 / live_s,
    }


def _measure_baseline(bench: _Bench) -> dict:
    """The published demo's structure: per frame a new identity context (nothing cached), batch 1."""
    quality = preset_settings("quality")
    baseline_frames = min(bench.frames, 4)

    def baseline():
        for i in range(baseline_frames):
            ctx = bench.pipe.prepare_identity(bench.embedding, bench.reference_image)  # a new context: nothing cached
            bench.pipe.generate(ctx, bench.expressions[i:i + 1], quality)

    baseline_s = _timed(baseline, bench.device, 1, warm_up=None)  # the presets above warmed the same code
    return {"offline_fps": baseline_frames / baseline_s, "frames": baseline_frames, "steps": quality.steps}


def format_table(results: dict) -> str:
    s = results["stages"]
    lines = [
        f"device: {results['device']}   models: {results['models']}   dtype: {results['dtype']}",
        f"driver: {results['driver']}",
        "stage                                  figure",
        f"decode                                 {s['decode_fps']:10.1f} frames/s",
        f"decode + perception + mapping          {s['decode_perception_mapping_fps']:10.1f} frames/s",
        f"mapping                                {s['mapping_ms_per_frame']:10.3f} ms/frame",
        f"identity context (once per identity)   {s['identity_context_ms']:10.1f} ms",
        f"UNet step (batch {s['unet_step_batch']}, CFG)               {s['unet_step_ms']:10.1f} ms",
        f"VAE decode                             {s['vae_decode_ms_per_frame']:10.1f} ms/frame",
        f"video encode                           {s['encode_ms_per_frame']:10.1f} ms/frame",
        *([f"TAESD decode                           {s['tiny_vae_decode_ms_per_frame']:10.1f} ms/frame"]
          if "tiny_vae_decode_ms_per_frame" in s else []),
        "",
        "preset     steps  cfg   offline frames/s  live latency ms  trade",
    ]
    for name, p in results["presets"].items():
        lines.append(f"{name:<10} {p['steps']:>5}  {p['cfg']:<4}  {p['offline_fps']:>16.2f}  {p['live_latency_ms']:>15.0f}  {p['trade']}")
    b = results["baseline"]
    ratio = b.get("speedup_quality_vs_baseline")
    lines.append("")
    lines.append(f"baseline (demo structure, {b['steps']} steps): {b['offline_fps']:.3f} frames/s"
                 + (f"; quality preset is {ratio:.2f}x the baseline" if ratio else ""))
    if "peak_gpu_memory_gb" in results:
        lines.append(f"peak GPU memory: {results['peak_gpu_memory_gb']:.2f} GB")
    return "\n".join(lines)
