"""Randomly initialised model sets in exactly the published folder and key layouts.

No weights can be downloaded on build machines, so tests and CPU benchmarks run on these:
`tiny` (seconds on a CPU) and `sd15` (full SD 1.5 shapes, for timing; timings do not depend
on weight values). They go through the same loading code as the published files. Their
output is noise: they are TEST MODELS, never for real use.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from retarget.models.adapters import LORA_TARGETS, cross_attention_widths, self_attention_paths
from retarget.models.tokenizer_vocab import write_clip_tokenizer

TEST_MODEL_MARKER = "RANDOM_TEST_MODEL.txt"
SIZES = ("tiny", "sd15")
DEFAULT_EXP_DIM = 55  # the random sets (`--models random:SIZE`) speak FLAME-55, as the published adapter does

SD15_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

UNET_CONFIGS = {
    "tiny": dict(
        sample_size=16,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=512,
        attention_head_dim=8,
        norm_num_groups=8,
    ),
    # The SD 1.5 / Arc2Face UNet (the library defaults are SD 1.5's, spelled out for clarity).
    "sd15": dict(
        sample_size=64,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
        norm_num_groups=32,
    ),
}

VAE_CONFIGS = {
    "tiny": dict(
        block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    ),
    "sd15": dict(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=512,
        scaling_factor=0.18215,
    ),
}

ENCODER_CONFIGS = {
    "tiny": dict(hidden_size=512, intermediate_size=1024, num_attention_heads=8, num_hidden_layers=2),
    "sd15": dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12),
}
VOCAB_SIZES = {"tiny": None, "sd15": 49408}
LORA_RANKS = {"tiny": 8, "sd15": 128}


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(shape, gen: torch.Generator, std: float) -> torch.Tensor:
    return (torch.randn(shape, generator=gen) * std).contiguous()


def write_unet(out: Path, size: str, seed: int):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**UNET_CONFIGS[size])
    unet.save_pretrained(out, safe_serialization=True)
    return unet


def write_encoder(out: Path, size: str, vocab_size: int, seed: int) -> None:
    """CLIP text encoder config + pytorch_model.bin with the published `text_model.` keys."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=ENCODER_CONFIGS[size]["hidden_size"],
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        **ENCODER_CONFIGS[size],
    )
    config.architectures = ["CLIPTextModel"]
    torch.manual_seed(seed)
    model = CLIPTextModel(config)
    state = {}
    for key, value in model.state_dict().items():
        key = key if key.startswith("text_model.") else f"text_model.{key}"
        state[key] = value.contiguous()
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    torch.save(state, out / "pytorch_model.bin")


def write_vae(out: Path, size: str, seed: int) -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    AutoencoderKL(**VAE_CONFIGS[size]).save_pretrained(out, safe_serialization=True)


def expression_adapter_state(unet, exp_dim: int, seed: int, num_tokens: int = 4) -> dict:
    """A random Expression Adapter in the published IP-Adapter layout (`image_proj` / `ip_adapter`)."""
    gen = _seeded(seed)
    dim = unet.config.cross_attention_dim
    hidden = 2 * exp_dim
    image_proj = {
        "proj.0.weight": _randn((hidden, exp_dim), gen, exp_dim**-0.5),
        "proj.0.bias": _randn((hidden,), gen, 0.02),
        "proj.2.weight": _randn((num_tokens * dim, hidden), gen, hidden**-0.5),
        "proj.2.bias": _randn((num_tokens * dim,), gen, 0.02),
        "norm.weight": 1.0 + _randn((dim,), gen, 0.02),
        "norm.bias": _randn((dim,), gen, 0.02),
    }
    ip_adapter = {}
    for index, width in enumerate(cross_attention_widths(unet)):
        key = 2 * index + 1  # self-attention layers take the even numbers
        ip_adapter[f"{key}.to_k_ip.weight"] = _randn((width, dim), gen, dim**-0.5)
        ip_adapter[f"{key}.to_v_ip.weight"] = _randn((width, dim), gen, dim**-0.5)
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def reference_lora_state(unet, rank: int, seed: int) -> dict[str, torch.Tensor]:
    """A random Reference Adapter LoRA with the published (older diffusers) key names."""
    gen = _seeded(seed)
    modules = dict(unet.named_modules())
    state = {}
    for attn_path in self_attention_paths(unet):
        for target in LORA_TARGETS:
            linear = modules[f"{attn_path}.{target}"]
            prefix = f"unet.{attn_path}.{target}.lora"
            state[f"{prefix}.down.weight"] = _randn((rank, linear.in_features), gen, linear.in_features**-0.5)
            state[f"{prefix}.up.weight"] = _randn((linear.out_features, rank), gen, 0.2 * rank**-0.5)
    return state


def write_test_models(out: Path, size: str = "tiny", seed: int = 0, exp_dim: int = DEFAULT_EXP_DIM, progress=print) -> Path:
    """Write a complete random model folder at `out` (atomically: a temp folder renamed at the end)."""
    from retarget.weights.test_face_models import write_random_arcface_onnx
    from retarget.weights.test_face_models import write_random_smirk_checkpoint

    if size not in SIZES:
        raise ValueError(f"unknown test model size {size!r}; choose from {', '.join(SIZES)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        progress(f"writing RANDOM {size} test models to {out} (not real weights; output is noise)")
        vocab_size = write_clip_tokenizer(work / "sd15" / "tokenizer", VOCAB_SIZES[size])
        progress("  arc2face/ (UNet)")
        unet = write_unet(work / "arc2face", size, seed)
        progress("  encoder/ (ID encoder)")
        write_encoder(work / "encoder", size, vocab_size, seed + 1)
        progress("  sd15/vae, sd15/scheduler")
        write_vae(work / "sd15" / "vae", size, seed + 2)
        (work / "sd15" / "scheduler").mkdir(parents=True)
        (work / "sd15" / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER_CONFIG, indent=2))
        progress("  exp_adapter/, ref_adapter/")
        (work / "exp_adapter").mkdir()
        torch.save(expression_adapter_state(unet, exp_dim, seed + 3), work / "exp_adapter" / "exp_adapter.bin")
        (work / "ref_adapter").mkdir()
        save_file(
            reference_lora_state(unet, LORA_RANKS[size], seed + 4),
            work / "ref_adapter" / "pytorch_lora_weights.safetensors",
            metadata={"format": "pt"},  # as diffusers writes it
        )
        progress("  arcface.onnx, smirk/SMIRK_em1.pt")
        write_random_arcface_onnx(work / "arcface.onnx", seed=seed + 5)
        (work / "smirk").mkdir()
        write_random_smirk_checkpoint(work / "smirk" / "SMIRK_em1.pt", seed=seed + 6)
        (work / TEST_MODEL_MARKER).write_text(
            f"Randomly initialised {size} test models (seed {seed}, expression width {exp_dim}).\n"
            "They load like the published Arc2Face weights but produce noise. Never use them for real output.\n"
        )
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def is_test_model(folder: Path) -> bool:
    return (Path(folder) / TEST_MODEL_MARKER).exists()


TINY_VAE_CONFIGS = {
    # TAESD's layout; the tiny one upsamples 4x to match the tiny VAE.
    "tiny": dict(encoder_block_out_channels=(8, 8, 8), decoder_block_out_channels=(8, 8, 8),
                 num_encoder_blocks=(1, 1, 1), num_decoder_blocks=(1, 1, 1)),
    "sd15": dict(),
}


def write_tiny_vae(out: Path, size: str = "tiny", seed: int = 0) -> Path:
    """A random TAESD-style AutoencoderTiny (for tests and timing of the --tiny-vae option)."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    AutoencoderTiny(**TINY_VAE_CONFIGS[size]).save_pretrained(out, safe_serialization=True)
    return Path(out)


# The LCM-LoRA for SD 1.5 (latent-consistency/lcm-lora-sdv1-5) as the LCM distillation script trains
# it: rank 64 (alpha 64) on every attention, feed-forward, resnet and resampling layer of the UNet.
LCM_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                    "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj")
LCM_LORA_RANK = 64


def write_lcm_lora(out: Path, models: Path, rank: int = 4, seed: int = 0) -> Path:
    """A random LoRA in the LCM-LoRA's layout (its target layers, diffusers' file format) for the UNet of a test set.

    Tests use a small rank; timing uses LCM_LORA_RANK, the published file's.
    """
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(Path(models) / "arc2face")
    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=list(LCM_LORA_TARGETS)))
    StableDiffusionPipeline.save_lora_weights(out, unet_lora_layers=get_peft_model_state_dict(unet))
    return Path(out) / "pytorch_lora_weights.safetensors"
