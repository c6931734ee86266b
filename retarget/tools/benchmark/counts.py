"""`retarget bench count`: the work per frame, counted, so it does not depend on the machine.

- Python calls per `generate` (batch 1) with the UNet and the VAE stubbed out: the host's own cost,
  on a model with SD 1.5's UNet block structure (the same module tree, so the same walks) at narrow
  widths, the Expression Adapter, the Reference Adapter LoRA and an LCM-LoRA attached.
- aten ops per UNet call (a TorchDispatchMode counts every op the call dispatches; on a GPU each is
  about one kernel launch), on the same structure: with the LoRAs as sampling uses them and with none.
- FLOPs per frame per preset at SD 1.5 size (torch.utils.flop_counter on the meta device).
- UNet / VAE calls per frame (from the stubs) and perception calls per frame (the offline engine).
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from retarget.config.generation import PRESETS, preset_settings

# SD 1.5's UNet blocks (down/up types, layers, attention layout) at widths a CPU runs in a blink:
# the module tree, and so any walk over it, is SD 1.5's. Cross-attention width = the tiny text encoder's.
STRUCTURE_UNET = dict(sample_size=64, layers_per_block=2, block_out_channels=(32, 32, 64, 64),
                      down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                      up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                      cross_attention_dim=512, attention_head_dim=8, norm_num_groups=8)


def write_structure_models(out: Path) -> tuple[Path, Path]:
    """The tiny test set with its UNet (and the adapters fitted to it) replaced by STRUCTURE_UNET; plus an LCM-LoRA.

    Returns (models folder, LCM-LoRA file)."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from retarget.weights import testmodels

    testmodels.write_test_models(out, "tiny", progress=lambda line: None)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**STRUCTURE_UNET)
    unet.save_pretrained(out / "arc2face", safe_serialization=True)
    torch.save(testmodels.expression_adapter_state(unet, 55, 3), out / "exp_adapter" / "exp_adapter.bin")
    save_file(testmodels.reference_lora_state(unet, 4, 4), out / "ref_adapter" / "pytorch_lora_weights.safetensors",
              metadata={"format": "pt"})
    lcm = testmodels.write_lcm_lora(out / "lcm-lora", out, rank=4)
    return out, lcm


def load_structure_pipeline(work: Path):
    from retarget.weights.assets import resolve_models
    from retarget.pipeline import RetargetPipeline

    models, lcm = write_structure_models(work / "models")
    pipe = RetargetPipeline.from_files(resolve_models(str(models)), "cpu", torch.float32)
    pipe.load_lcm_lora(lcm)
    return pipe


@contextmanager
def stubbed_networks(pipe, calls: Counter):
    """The UNet's and the VAE decoder's forward replaced, on these instances only, by stubs that count their calls
    and return zeros of the right shape: what remains is the host's work around the networks."""
    from diffusers.models.autoencoders.vae import DecoderOutput
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    scale = pipe.vae_scale_factor

    def unet(sample, timestep, encoder_hidden_states=None, **kwargs):
        calls["unet"] += 1
        return UNet2DConditionOutput(sample=torch.zeros_like(sample))

    def decode(latents, *args, **kwargs):
        calls["vae"] += 1
        b, _, h, w = latents.shape
        return DecoderOutput(sample=torch.zeros(b, 3, h * scale, w * scale, dtype=latents.dtype))

    pipe.unet.forward, pipe.vae.decode = unet, decode
    try:
        yield
    finally:
        del pipe.unet.forward, pipe.vae.decode  # the class's own again


def python_calls(fn) -> int:
    """Python function calls (sys.setprofile 'call' events, generator resumptions included) made by fn() on this thread."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def host_counts(pipe, context, expressions: np.ndarray) -> dict:
    """Per preset: Python calls of one warm generate (batch 1) with the networks stubbed, and UNet/VAE calls per frame."""
    figures = {}
    for name in PRESETS:
        settings = preset_settings(name)
        calls: Counter = Counter()
        with stubbed_networks(pipe, calls):
            pipe.generate(context, expressions[:1], settings)  # warm: lazy imports, caches
            calls.clear()
            count = python_calls(lambda: pipe.generate(context, expressions[:1], settings))
        figures[name] = {"python_calls_per_generate": count, "unet_calls_per_frame": calls["unet"],
                         "vae_calls_per_frame": calls["vae"], "steps": settings.steps, "cfg": settings.cfg}
    return figures


class _OpCounter(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def _captured_unet_call(pipe, context, expressions: np.ndarray, settings) -> tuple:
    """The arguments of the first UNet call a generate (batch 1) makes, with the LoRAs left as it set them."""
    captured = []

    def capture(module, args, kwargs):
        if not captured:
            captured.append((args, kwargs))

    handle = pipe.unet.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        pipe.generate(context, expressions[:1], replace(settings, steps=1))
    finally:
        handle.remove()
    return captured[0]


def ops_per_unet_call(pipe, context, expressions: np.ndarray, settings, bare: bool = False) -> int:
    """aten ops dispatched by one UNet call exactly as generate makes it (CFG halves in one call, reference
    keys/values cached); `bare`: the same call with every LoRA layer off (base weights)."""
    args, kwargs = _captured_unet_call(pipe, context, expressions, settings)
    if bare:
        pipe.use_base_weights()
    counter = _OpCounter()
    with torch.no_grad(), counter:
        pipe.unet(*args, **kwargs)
    return counter.ops


def op_counts(pipe, context, expressions: np.ndarray) -> dict:
    """aten ops per UNet call at the quality and lcm presets, and the same calls with every LoRA layer off."""
    figures = {}
    for name in ("quality", "lcm"):
        settings = preset_settings(name)
        figures[name] = ops_per_unet_call(pipe, context, expressions, settings)
        figures[f"{name}_bare_unet"] = ops_per_unet_call(pipe, context, expressions, settings, bare=True)
    return figures


def meta_sd15_pipeline(work: Path):
    """The project's pipeline at SD 1.5 size on the meta device (shapes only, no memory, no arithmetic):
    Expression Adapter, Reference LoRA (rank 128), LCM-LoRA (rank 64, its target layers) and TAESD attached."""
    from diffusers import AutoencoderKL, AutoencoderTiny, DPMSolverMultistepScheduler, UNet2DConditionModel
    from peft import LoraConfig
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from retarget.weights import testmodels as tm
    from retarget.pipeline import LCM_ADAPTER, RetargetPipeline

    vocab = tm.write_clip_tokenizer(work / "tokenizer", tm.VOCAB_SIZES["sd15"])
    encoder = CLIPTextConfig(vocab_size=vocab, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
                             bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1,
                             **tm.ENCODER_CONFIGS["sd15"])
    with torch.device("meta"):
        unet = UNet2DConditionModel(**tm.UNET_CONFIGS["sd15"])
        vae = AutoencoderKL(**tm.VAE_CONFIGS["sd15"])
        text_encoder = CLIPTextModel(encoder)
        tiny_vae = AutoencoderTiny(**tm.TINY_VAE_CONFIGS["sd15"])
    scheduler = DPMSolverMultistepScheduler.from_config(tm.SD15_SCHEDULER_CONFIG, algorithm_type="dpmsolver++",
                                                        solver_order=2)
    torch.save(tm.expression_adapter_state(unet, 55, 3), work / "exp_adapter.bin")
    save_file(tm.reference_lora_state(unet, tm.LORA_RANKS["sd15"], 4), work / "ref_lora.safetensors",
              metadata={"format": "pt"})
    pipe = RetargetPipeline.assemble(unet, vae, text_encoder, CLIPTokenizer.from_pretrained(work / "tokenizer"),
                                     scheduler, work / "exp_adapter.bin", work / "ref_lora.safetensors", device="meta")
    # The LCM-LoRA's layers through peft directly (a file cannot be written from meta tensors): the same layers
    # load_lcm_lora would make.
    unet.add_adapter(LoraConfig(r=tm.LCM_LORA_RANK, lora_alpha=tm.LCM_LORA_RANK,
                                target_modules=list(tm.LCM_LORA_TARGETS)), adapter_name=LCM_ADAPTER)
    pipe.has_lcm = True
    pipe._lora_state = None
    pipe.tiny_vae = tiny_vae.eval()
    return pipe


def _flops(fn) -> float:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        fn()
    return float(counter.get_total_flops())


def flop_counts(work: Path) -> dict:
    """TFLOP per 512x512 frame per preset (steps x one noise prediction as generate makes it, plus the decode),
    and per identity (the ID encoder, the reference photo's VAE encode and the reference pass)."""
    pipe = meta_sd15_pipeline(work)
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=512).astype(np.float32)
    photo = rng.integers(0, 256, (pipe.image_size, pipe.image_size, 3), dtype=np.uint8)
    figures = {"per_identity_tflop": _flops(lambda: pipe.prepare_identity(embedding, photo)) / 1e12}
    context = pipe.prepare_identity(embedding, photo)
    expression = torch.zeros(1, pipe.exp_dim)
    tiny, pipe.tiny_vae = pipe.tiny_vae, None
    latents = pipe.noise_for(preset_settings("quality"), 1).to("meta")
    decode = _flops(lambda: pipe.decode(latents, output="pt"))
    tiny_decode = _flops(lambda: tiny.decode(latents))
    for name in PRESETS:
        settings = preset_settings(name)
        args, kwargs = _captured_unet_call_meta(pipe, context, expression, settings)
        step = _flops(lambda: pipe.unet(*args, **kwargs))
        figures[name] = {"tflop_per_frame": (settings.steps * step + decode) / 1e12,
                         "tflop_per_unet_call": step / 1e12, "steps": settings.steps}
    lcm = figures["lcm"]
    figures["lcm+taesd"] = {"tflop_per_frame": (lcm["tflop_per_unet_call"] * lcm["steps"] * 1e12 + tiny_decode) / 1e12}
    figures["vae_decode_tflop"], figures["taesd_decode_tflop"] = decode / 1e12, tiny_decode / 1e12
    return figures


def _captured_unet_call_meta(pipe, context, expression: torch.Tensor, settings) -> tuple:
    """One UNet call's arguments as generate prepares them (generate itself cannot run on meta: the scheduler
    looks up its timesteps by value)."""
    import inspect

    captured = []

    def capture(module, args, kwargs):
        captured.append((args, kwargs))
        raise _Captured

    fused = {"fused": True} if "fused" in inspect.signature(pipe.conditioning).parameters else {}
    with torch.no_grad():
        conditioning = pipe.conditioning(context, expression, settings, **fused)
        latents = pipe.noise_for(settings, 1).to("meta")
        handle = pipe.unet.register_forward_pre_hook(capture, with_kwargs=True)
        try:
            pipe.noise_prediction(latents, torch.tensor(500, device="meta"), conditioning)
        except _Captured:
            pass
        finally:
            handle.remove()
    return captured[0]


class _Captured(Exception):
    pass


class _CountingAnalyzer:
    """Stands in for MediaPipe (+ SMIRK): counts its calls; a zero expression per frame."""

    mapping = None
    frames_without_face = 0

    def __init__(self, exp_dim: int, calls: Counter, expression_kind: str | None = None):
        self.exp_dim, self.calls = exp_dim, calls
        self.expression_kind = expression_kind  # the adapter's, as a real analyzer names it (the engine asks)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass

    def __call__(self, frame, capture_time=None):
        from retarget.engine.driving import DrivenFrame

        self.calls["perception"] += 1
        return DrivenFrame(index=frame.index, time=frame.time, image=frame.image,
                           expression=np.zeros(self.exp_dim, np.float32), blendshapes=np.zeros(52, np.float32),
                           face_found=True)


def offline_counts(pipe, context, work: Path, frames: int = 8, batch: int = 4) -> dict:
    """Perception, UNet and VAE calls per frame of an offline render (`lcm`, an image-folder driver, networks stubbed)."""
    from PIL import Image

    from retarget.config.render import RenderOptions
    from retarget.engine import OfflineRenderer

    driver = work / "driver"
    driver.mkdir()
    for i in range(frames):
        Image.fromarray(np.full((32, 32, 3), i, np.uint8)).save(driver / f"{i:03d}.png")
    calls: Counter = Counter()
    settings = preset_settings("lcm")
    renderer = OfflineRenderer(pipe, context, lambda: _CountingAnalyzer(pipe.exp_dim, calls, pipe.expression_kind), settings)
    with stubbed_networks(pipe, calls):
        renderer.render(str(driver), work / "out", RenderOptions(batch_size=batch, progress=False, lock=False))
    return {"preset": "lcm", "frames": frames, "batch": batch,
            **{f"{k}_calls_per_frame": calls[k] / frames for k in ("perception", "unet", "vae")}}


def source_commit() -> str | None:
    """The commit of the retarget checkout that ran (with "+dirty" for uncommitted changes), None outside git."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def run_counts(log=print, flops: bool = True) -> dict:
    """Every count, in one dict (what `retarget bench count` prints and writes)."""
    from retarget.tools.benchmark.common import versions

    results = {"benchmark": "retarget bench count", "commit": source_commit(), "versions": versions(),
               "model": "SD 1.5's UNet block structure at narrow widths (STRUCTURE_UNET), Expression Adapter, Reference "
                        "LoRA (rank 4), LCM-LoRA (rank 4, its target layers); CPU, float32",
               "python_calls": "sys.setprofile 'call' events of one warm generate, batch 1, UNet and VAE stubbed",
               "ops": "aten ops dispatched by one UNet call as generate makes it (TorchDispatchMode), 64x64 latents"}
    with tempfile.TemporaryDirectory(prefix="retarget-bench-count-") as work:
        log("building the SD 1.5-structure test models ...")
        pipe = load_structure_pipeline(Path(work))
        rng = np.random.default_rng(0)
        embedding = rng.normal(size=512).astype(np.float32)
        photo = rng.integers(0, 256, (pipe.image_size, pipe.image_size, 3), dtype=np.uint8)
        context = pipe.prepare_identity(embedding, photo)
        expressions = (rng.normal(size=(4, pipe.exp_dim)) * 0.3).astype(np.float32)
        results["modules_in_unet"] = sum(1 for _ in pipe.unet.modules())
        log("Python calls per generate ...")
        results["host"] = host_counts(pipe, context, expressions)
        log("offline engine calls per frame ...")
        results["offline"] = offline_counts(pipe, context, Path(work))
        log("ops per UNet call ...")
        results["ops_per_unet_call"] = op_counts(pipe, context, expressions)
        if flops:
            log("FLOPs at SD 1.5 size (meta device) ...")
            results["flops"] = flop_counts(Path(work))
    return results


def format_counts(results: dict) -> str:
    lines = [f"retarget bench count ({results.get('commit')})", "",
             "preset     python calls/generate  UNet calls/frame  VAE calls/frame  TFLOP/frame (SD 1.5)"]
    flops = results.get("flops", {})
    for name, row in results["host"].items():
        tflop = flops.get(name, {}).get("tflop_per_frame")
        lines.append(f"{name:<10} {row['python_calls_per_generate']:>21,}  {row['unet_calls_per_frame']:>16}  "
                     f"{row['vae_calls_per_frame']:>15}  {tflop if tflop is None else round(tflop, 2)!s:>20}")
    if "lcm+taesd" in flops:
        lines.append(f"lcm+taesd  {'':>21}  {'':>16}  {'':>15}  {round(flops['lcm+taesd']['tflop_per_frame'], 2):>20}")
    if "per_identity_tflop" in flops:
        lines.append(f"per identity (once): {flops['per_identity_tflop']:.2f} TFLOP")
    ops = results["ops_per_unet_call"]
    lines += ["", "aten ops per UNet call: " + ", ".join(f"{k} {v:,}" for k, v in ops.items())]
    for key in ("perception", "offline"):
        if key in results:
            lines.append(f"{key}: " + ", ".join(f"{k} {v}" for k, v in results[key].items()))
    return "\n".join(lines)
