"""Model files -> the diffusers components, with the published adapter files attached to the UNet.

The Expression Adapter goes in through diffusers' IP-Adapter loader (FaceID-style projection), the
Reference Adapter and the LCM-LoRA through its LoRA loaders (peft), each under its adapter name.
"""

from __future__ import annotations

from pathlib import Path

import torch

from retarget.weights.assets import ModelFiles
from retarget.errors import BadInputError, MissingWeightsError, describe_file_error, explain, first_line
from retarget.models.adapters import load_expression_adapter, load_reference_lora

REFERENCE_ADAPTER = "reference"
LCM_ADAPTER = "lcm"
LCM_LORA_HUB_ID = "latent-consistency/lcm-lora-sdv1-5"


def load_components(files: ModelFiles, dtype: torch.dtype) -> tuple:
    """(unet, vae, text_encoder, tokenizer, scheduler) from a resolved model set; one-line errors naming the part."""
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    part = files.unet
    try:
        unet = UNet2DConditionModel.from_pretrained(files.unet, torch_dtype=dtype)
        part = files.vae
        vae = AutoencoderKL.from_pretrained(files.vae, torch_dtype=dtype)
        part = files.encoder
        text_encoder = CLIPTextModel.from_pretrained(files.encoder, dtype=dtype)
        part = files.tokenizer
        tokenizer = CLIPTokenizer.from_pretrained(files.tokenizer)
        part = files.scheduler
        scheduler = DPMSolverMultistepScheduler.from_pretrained(
            files.scheduler, algorithm_type="dpmsolver++", solver_order=2
        )
    except (OSError, ValueError) as err:
        raise MissingWeightsError(f"cannot load the models from {files.description}: {first_line(err)}") from None
    except Exception as err:  # a refused pickle, a corrupt safetensors/zip: name the folder, never load unsafely
        if explain(err) is None:  # e.g. the tokenizers library's bare Exception for a binary vocab.json
            raise BadInputError(f"{part}: cannot be loaded ({type(err).__name__}: {first_line(err, 160)}); "
                                f"replace it with a complete copy of the published files") from None
        raise BadInputError(describe_file_error(part, err, "model file")) from None
    return unet, vae, text_encoder, tokenizer, scheduler


def adapter_files(files: ModelFiles, exp_adapter: Path | None, ref_lora: Path | None,
                  use_exp_adapter: bool, use_ref_lora: bool) -> tuple[Path | None, Path | None]:
    """The adapter files to attach: the ones passed, else the model set's; None for an adapter turned off."""
    exp_path = (exp_adapter or files.exp_adapter) if use_exp_adapter else None
    if use_exp_adapter and exp_path is None:
        raise MissingWeightsError(f"no Expression Adapter (exp_adapter/exp_adapter.bin) in {files.description}; pass --exp-adapter PATH")
    lora_path = (ref_lora or files.ref_lora) if use_ref_lora else None
    if use_ref_lora and lora_path is None:
        raise MissingWeightsError(
            f"no Reference Adapter (ref_adapter/pytorch_lora_weights.safetensors) in {files.description}; pass --ref-lora PATH or --no-reference"
        )
    return exp_path, lora_path


def stable_diffusion_with_adapters(unet, vae, text_encoder, tokenizer, scheduler, exp_adapter=None, ref_lora=None,
                                   device="cpu", dtype=torch.float32) -> tuple:
    """Loaded components -> (a frozen StableDiffusionPipeline with the adapter files attached, the expression width or None)."""
    from diffusers import StableDiffusionPipeline

    sd = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    sd.set_progress_bar_config(disable=True)
    exp_dim = None
    if exp_adapter is not None:
        state, exp_dim = load_expression_adapter(Path(exp_adapter), unet)
        # diffusers reads the original IP-Adapter layout (FaceID-style projection, numbered to_k_ip/to_v_ip).
        sd.load_ip_adapter(state, subfolder=None, weight_name=Path(exp_adapter).name, image_encoder_folder=None)
    if ref_lora is not None:
        lora = load_reference_lora(Path(ref_lora), unet)
        # peft reads the older diffusers key format (`.lora.down/.up`) through diffusers' converter.
        unet.load_lora_adapter(lora, prefix="unet", adapter_name=REFERENCE_ADAPTER)
    sd.to(device=torch.device(device))
    if dtype != torch.float32:  # peft creates the LoRA layers in fp32
        unet.to(dtype=dtype)
    for module in (unet, vae, text_encoder):
        module.eval().requires_grad_(False)
    return sd, exp_dim


def load_lcm_lora(sd, source: str | Path = LCM_LORA_HUB_ID) -> None:
    """The LCM-LoRA for SD 1.5 (hub id, folder or file) onto `sd`'s UNet, under LCM_ADAPTER."""
    path = Path(str(source)).expanduser()
    location, weight_name = (path.parent, path.name) if path.is_file() else (str(source), None)
    try:
        sd.load_lora_weights(str(location), weight_name=weight_name, adapter_name=LCM_ADAPTER)
    except Exception as err:  # hub, file and format errors all mean "not usable here"
        reason = first_line(err, 160)
        raise MissingWeightsError(f"cannot load the LCM-LoRA from {source} ({reason}); fetch {LCM_LORA_HUB_ID} once with internet") from None
