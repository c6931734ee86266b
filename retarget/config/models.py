"""Which weights load, where, and how the loaded generator is sped up (ModelOptions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from retarget.config.knobs import knob

MODELS_HELP = (
    "hub (default: FoivosPar/Arc2Face + SD 1.5 VAE/tokenizer/scheduler through the Hugging Face cache), "
    "a models folder, or random:tiny / random:sd15 (randomly initialised TEST MODELS: output is noise)"
)
DTYPES = ("auto", "fp16", "bf16", "fp32")
ATTENTION = ("auto", "math", "flash", "efficient", "cudnn")  # retarget.pipeline.attention (config imports no torch)


@dataclass
class ModelOptions:
    SECTION: ClassVar[str] = "model"  # saved-settings keys model/<name>
    TITLE: ClassVar[str] = "Device"
    CLI_GROUP: ClassVar[str] = "models"  # --help group of the knobs without one of their own

    models: str = knob("hub", flag="--models", help=MODELS_HELP)
    exp_adapter: Path | None = knob(None, flag="--exp-adapter", reads=True, help="use this Expression Adapter file instead of the models folder's")
    ref_lora: Path | None = knob(None, flag="--ref-lora", reads=True, help="use this Reference Adapter LoRA file instead of the models folder's")
    landmarker: Path | None = knob(None, flag="--landmarker", reads=True,
                                   help="MediaPipe face_landmarker.task (default: models folder, $RETARGET_FACE_LANDMARKER, cache, download)")
    smirk: Path | None = knob(None, flag="--smirk", reads=True, help="SMIRK_em1.pt for FLAME-55 adapters (default: MODELS/smirk/SMIRK_em1.pt)")
    bridge: Path | None = knob(None, flag="--bridge", reads=True, metavar="BRIDGE.safetensors",
                               help="the expression bridge (blendshapes -> FLAME-55) to use for a FLAME-55 adapter (default: the one "
                                    "`retarget bridge fit` made for this adapter, beside the models or in the cache)")
    # The app lists the devices this machine has; `device` was a top-level saved key before model/device.
    device: str = knob("auto", flag="--device", help="auto, cpu, cuda, cuda:N or mps (default auto)",
                       label="Run on", tooltip="Where the generator runs; changing it reloads the models", old_keys=("device",))
    dtype: str = knob("auto", flag="--dtype", choices=DTYPES, help="auto = fp16 on CUDA, fp32 elsewhere")
    lcm_lora: str | None = knob(None, flag="--lcm-lora", group="speed", reads=True, metavar="SRC",
                                help="load the LCM-LoRA (latent-consistency/lcm-lora-sdv1-5, a folder or file) for --preset lcm")
    compile: bool = knob(False, flag="--compile", group="speed",
                         help="torch.compile the UNet (CUDA graphs on CUDA); slow first frames, same output")
    channels_last: bool = knob(False, flag="--channels-last", group="speed", help="NHWC memory layout (faster on GPUs, same output)")
    tiny_vae: str | None = knob(None, flag="--tiny-vae", group="speed", reads=True, metavar="SRC",
                                help="decode with TAESD (e.g. madebyollin/taesd or a folder): faster, slightly less detail")
    attention: str = knob("auto", flag="--attention", group="speed", choices=ATTENTION,
                          help="the UNet's attention kernel: auto (PyTorch picks), math (the reference kernel: slower, for "
                               "comparing numerics), flash, efficient or cudnn (refused where this device and dtype lack it)")
