"""The performance targets (one H100, 512x512, SD 1.5 shapes, fp16) checked against a `bench gpu` run, and its table."""

from __future__ import annotations

TARGET_SETUP = "one CUDA GPU (the targets are set for an H100), SD 1.5 shapes at 512x512, fp16"


def _get(tree: dict, *path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _figures(modes) -> list[tuple[str, dict]]:
    """(configuration, figure) for every measured figure of {mode: {batch_N: figure}}."""
    return [(f"{mode}, {batch.replace('_', ' ')}", figure)
            for mode, by_batch in (modes or {}).items() if isinstance(by_batch, dict)
            for batch, figure in by_batch.items() if isinstance(figure, dict) and "fps" in figure]


def _target(name: str, goal: str, value: str | None, passed: bool | None, how: str, applies: bool) -> dict:
    status = "NOT MEASURED" if passed is None else ("PASS" if passed else "MISS")
    return {"target": name, "goal": goal, "value": value, "status": status, "measured_as": how, "applies": applies}


def evaluate_targets(results: dict) -> list[dict]:
    applies = (results.get("gpu") is not None and results["dtype"] == "float16"
               and _get(results, "setup", "image_size") == 512)
    targets = []
    quality = _figures(_get(results, "offline", "quality"))
    best = max(quality, key=lambda item: item[1]["fps"], default=None)
    targets.append(_target(
        "offline at the paper's settings", ">= 8 frames/s",
        f"{best[1]['fps']:.2f} frames/s ({best[0]})" if best else None,
        best[1]["fps"] >= 8 if best else None,
        "quality preset (DPM-Solver++ 25, CFG 3, Reference Adapter on), best configuration measured", applies))
    baseline = _get(results, "baseline", "offline_fps")
    ratio = best[1]["fps"] / baseline if best and baseline else None
    targets.append(_target(
        "offline vs the official demo's structure", ">= 4x", f"{ratio:.2f}x" if ratio else None,
        ratio >= 4 if ratio else None, "best quality offline / baseline (reference pass + pipeline call per frame, "
                                       "batch 1, nothing cached), same run", applies))
    live = _get(results, "live", "lcm+taesd", "compiled")
    perception_ms = _get(results, "perception", "ms_per_frame") or 0.0
    if isinstance(live, dict) and "median_ms" in live:
        fps, p95 = live["fps_at_median"], live["p95_ms"] + perception_ms
        value = f"{fps:.1f} frames/s, p95 {p95:.0f} ms" + ("" if perception_ms else " (generator only)")
        passed = fps >= 25 and p95 <= 120
    else:
        value, passed = None, None
    targets.append(_target(
        "live, LCM 4 steps + TAESD, compiled", ">= 25 frames/s at <= 120 ms", value, passed,
        "batch 1, frames/s at the median, latency p95 from expression in to image on the host"
        + (" plus perception" if perception_ms else "; perception not included (not measured here)"), applies))
    batch_one = [_get(results, "live", name, "eager") for name in (results.get("live") or {})]
    batch_one.append(_get(results, "offline", "quality", "eager", "batch_1"))
    peaks = [f["peak_memory_gb"] for f in batch_one if isinstance(f, dict) and f.get("peak_memory_gb") is not None]
    targets.append(_target(
        "GPU memory at batch 1", "<= 8 GB", f"{max(peaks):.2f} GB" if peaks else None,
        max(peaks) <= 8 if peaks else None,
        "torch.cuda.max_memory_allocated (10^9 bytes), reset before each batch-1 measurement, worst preset", applies))
    psnr = _get(results, "psnr", "min_db")
    targets.append(_target(
        "reduced precision vs fp32", ">= 35 dB", f"{psnr:.1f} dB" if psnr is not None else None,
        psnr >= 35 if psnr is not None else None,
        f"PSNR of {_get(results, 'psnr', 'reduced') or 'fp16'} against fp32 on the same inputs, worst of "
        f"{len(_get(results, 'psnr', 'seeds') or [])} seeds", applies))
    return targets


def _line(label: str, figure) -> str:
    if not isinstance(figure, dict) or not figure:
        return f"  {label:<34} -"
    if "skipped" in figure:
        return f"  {label:<34} skipped: {figure['skipped']}"
    if "error" in figure:
        return f"  {label:<34} ERROR: {figure['error']}"
    if "median_ms" in figure:
        memory = f"  peak {figure['peak_memory_gb']:.2f} GB" if figure.get("peak_memory_gb") is not None else ""
        return (f"  {label:<34} median {figure['median_ms']:8.1f} ms  p95 {figure['p95_ms']:8.1f} ms  "
                f"{figure['fps_at_median']:7.2f} frames/s  ({figure['frames']} frames){memory}")
    if "offline_fps" in figure:
        return f"  {label:<34} {figure['offline_fps']:8.2f} frames/s  ({figure['frames']} frames, {figure['steps']} steps, batch 1)"
    if "fps" in figure:
        memory = f"  peak {figure['peak_memory_gb']:.2f} GB" if figure.get("peak_memory_gb") is not None else ""
        return f"  {label:<34} {figure['fps']:8.2f} frames/s  ({figure['frames']} frames, batch {figure['batch']}){memory}"
    if "ms" in figure:
        flops = (f"  {figure['achieved_tflops']:7.4g} TFLOP/s" if "achieved_tflops" in figure else "")
        share = (f" = {100 * figure['fraction_of_matmul_peak']:.0f}% of the matmul peak; lower bound "
                 f"{figure['lower_bound_ms']:.1f} ms" if "fraction_of_matmul_peak" in figure else "")
        return f"  {label:<34} {figure['ms']:8.1f} ms{flops}{share}"
    return f"  {label:<34} {figure}"


def format_gpu_table(results: dict) -> str:
    gpu = results.get("gpu") or {}
    v = results["versions"]
    lines = [
        f"device: {results['device']}" + (f"   driver {gpu.get('driver')}" if gpu else ""),
        f"torch {v['torch']} (CUDA {v['cuda']})   diffusers {v['diffusers']}   transformers {v['transformers']}   "
        f"peft {v.get('peft')}",
        f"models: {results['models']}   dtype: {results['dtype']}   "
        f"budget: {results['budget']['used_s']:.0f} of {results['budget']['seconds']:.0f} s used",
        *[f"note: {note}" for note in results["notes"]],
        "",
        "setup: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in results["setup"].items() if k not in ("lcm_lora", "tiny_vae")),
        _line("perception", results["perception"]) if "fps" not in results["perception"] else
        f"  perception                         {results['perception']['fps']:.1f} frames/s",
    ]
    unet = results["unet"]
    if "tflop_per_frame_step_cfg" in unet:
        lines += ["", f"UNet: {unet['tflop_per_unet_eval']:.4g} TFLOP per image per step "
                      f"({unet['tflop_per_frame_step_cfg']:.4g} with CFG); matmul peak measured "
                      f"{unet['matmul_peak_tflops']:.4g} TFLOP/s"]
    for mode, by_batch in (unet.get("step") or {}).items():
        if isinstance(by_batch, dict):
            lines += [_line(f"UNet step {mode}, {b.replace('_', ' ')} (CFG)", f) for b, f in by_batch.items()]
        else:
            lines.append(_line("UNet step", unet.get("step")))
    lines += ["", "offline (generator frames/s)"]
    for preset, modes in results["offline"].items():
        for mode, by_batch in modes.items():
            lines += [_line(f"{preset} {mode} {b.replace('_', ' ')}", f) for b, f in by_batch.items()]
    lines.append(_line("baseline (demo structure)", results["baseline"]))
    lines += ["", "live (batch 1; latency expression in -> image out)"]
    for preset, modes in results["live"].items():
        lines += [_line(f"{preset} {mode}", f) for mode, f in modes.items()]
    cl = results["channels_last"]
    lines += ["", "channels_last (UNet + VAE)"]
    lines += [_line(k, f) for k, f in cl.items()] if "skipped" not in cl and "error" not in cl else [_line("channels_last", cl)]
    if results["compiled"]:
        lines.append(f"compiled: {results['compiled'].get('backend')}, layout {results['compiled'].get('layout')}")
    psnr = results["psnr"]
    if "min_db" in psnr:
        lines.append(f"{psnr['reduced']} vs {psnr['reference']}: PSNR " + ", ".join(f"{p:.1f}" for p in psnr["psnr_db"])
                     + f" dB (worst {psnr['min_db']:.1f})")
    else:
        lines.append(_line("fp16 vs fp32 PSNR", psnr))
    for item in results["skipped"]:
        lines.append(f"skipped: {item['measurement']} ({item['reason']})")
    for item in results["errors"]:
        lines.append(f"ERROR: {item['measurement']}: {item['error']}")
    lines += ["", f"targets ({TARGET_SETUP})", f"  {'target':<42} {'goal':<28} {'status':<13} measured"]
    for t in results["targets"]:
        status = t["status"] if t["applies"] or t["status"] == "NOT MEASURED" else f"{t['status']}*"
        lines.append(f"  {t['target']:<42} {t['goal']:<28} {status:<13} {t['value'] or '-'}")
    if any(not t["applies"] for t in results["targets"]):
        lines.append("  * not the targets' setup (" + TARGET_SETUP + "): the status does not check the target")
    return "\n".join(lines)
