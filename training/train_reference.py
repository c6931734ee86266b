"""`python -m training.train_reference`: train the Reference Adapter (rank-128 LoRA on self-attention).

The reference pass is the frozen UNet with the LoRA disabled: exactly RetargetPipeline.reference_features.
The main UNet's self-attention (with the LoRA) attends to the reference frame's recorded tokens;
the target frame (another frame of the same clip) is conditioned on its own expression through
the frozen Expression Adapter and on the reference's identity (as at inference). A zero-initialised
LoRA is written in the published layout and loaded through the pipeline's loader; the result is
saved in that layout (`.lora.down/.lora.up`, metadata {"format": "pt"}).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from retarget.config import ModelOptions
from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.knobs import knob, validate_knobs
from retarget.errors import RetargetError
from training.common import AdapterTrainer, adapter_file, base_parser, cli, lora_weights_of, run

WEIGHTS_NAME = "pytorch_lora_weights.safetensors"


def initial_reference_lora(unet, rank: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Published-layout LoRA: down as peft initialises lora_A (Kaiming-uniform), up zero (so it starts as a no-op)."""
    from retarget.models.adapters import LORA_TARGETS, self_attention_paths

    modules = dict(unet.named_modules())
    state = {}
    gen = torch.Generator().manual_seed(seed)
    for attn_path in self_attention_paths(unet):
        for target in LORA_TARGETS:
            linear = modules[f"{attn_path}.{target}"]
            bound = math.sqrt(6.0 / ((1 + 5.0) * linear.in_features))  # kaiming_uniform_(a=sqrt(5))
            down = (torch.rand((rank, linear.in_features), generator=gen) * 2 - 1) * bound
            prefix = f"unet.{attn_path}.{target}.lora"
            state[f"{prefix}.down.weight"] = down.contiguous()
            state[f"{prefix}.up.weight"] = torch.zeros((linear.out_features, rank))
    return state


def reference_lora_state_of(unet, adapter: str = "reference") -> dict[str, torch.Tensor]:
    """The attached LoRA in the published key layout; peft's scaling (alpha/r) is folded into `up`."""
    from retarget.models.adapters import reference_lora_keys

    state = {}
    for name, (down, up) in lora_weights_of(unet, adapter).items():
        state[f"unet.{name}.lora.down.weight"], state[f"unet.{name}.lora.up.weight"] = down, up
    expected = reference_lora_keys(unet)
    if set(state) != expected:
        raise RetargetError(f"internal: exported LoRA keys do not match the published layout ({len(state)} vs {len(expected)})")
    return state


def save_reference_lora(state: dict, path: Path) -> None:
    from safetensors.torch import save_file

    from retarget.outputs import atomic_write

    atomic_write(path, lambda temp: save_file(state, temp, metadata={"format": "pt"}))


class ReferenceTrainer(AdapterTrainer):
    name = "reference"
    weights_name = WEIGHTS_NAME
    uses_pairs = True

    def build(self, files, components, work: Path):
        from retarget.pipeline import RetargetPipeline

        unet, vae, text_encoder, tokenizer, sampler = components
        args = self.args
        exp_adapter = adapter_file(args.exp_adapter, files.exp_adapter, "--exp-adapter", f"no Expression Adapter in {files.description}")
        if args.init is not None:
            lora = args.init
            if not Path(lora).is_file():
                raise RetargetError(f"--init {lora}: no such file")
        else:
            lora = work / WEIGHTS_NAME
            save_reference_lora(initial_reference_lora(unet, args.rank, args.seed), lora)
        pipeline = RetargetPipeline.assemble(unet, vae, text_encoder, tokenizer, sampler, exp_adapter=exp_adapter,
                                             ref_lora=lora, is_test_model=files.is_test_model)
        pipeline.set_expression_scale(1.0)
        return pipeline

    def is_trainable(self, name: str) -> bool:
        return ".lora_A.reference." in name or ".lora_B.reference." in name

    def export(self, path: Path) -> None:
        save_reference_lora(reference_lora_state_of(self.unet), path)

    def before_forward(self, batch: dict, prompt: torch.Tensor) -> dict:
        from retarget.models.reference_attention import ATTEND, ReferenceCall

        pipe = self.pipeline
        with torch.no_grad():
            ref_pixels = batch["ref_pixels"].to(pipe.device, pipe.vae.dtype)
            ref_latents = pipe.vae.encode(ref_pixels).latent_dist.mean * pipe.vae.config.scaling_factor
            ref_prompt = pipe.id_encoder.encode(batch["ref_arcface"].float())
            # The frozen UNet, LoRA disabled, no expression, t=0: the pipeline's own reference pass.
            features = pipe.reference_features(ref_prompt.to(pipe.dtype), ref_latents.to(pipe.dtype))
        pipe.set_expression_scale(1.0)
        for _, p in self.trainable_named_parameters():  # peft's disable/enable toggles requires_grad
            p.requires_grad_(True)
        # Every row is conditional; the reference keys/values are projected in the call, through
        # the LoRA being trained (gradient checkpointing re-runs the call with the same arguments).
        return {"cross_attention_kwargs": {"reference": ReferenceCall(ATTEND, features, cond_start=0)}}

    def restore_after_sampling(self) -> None:
        pipe = self.pipeline
        pipe.set_expression_scale(1.0)
        pipe.set_adapter_weights(1.0, lcm=False)  # the LoRA at full strength, as it is trained
        for _, p in self.trainable_named_parameters():
            p.requires_grad_(True)

    def main_run(self) -> dict:
        validate_knobs(from_args(ReferenceOptions, self.args))
        return run(self, self.args, lambda pipeline: pipeline.expression_kind)


@dataclass
class ReferenceOptions:
    """The Reference Adapter trainer's own knobs (the loop's are training.options.TrainingOptions)."""

    rank: int = knob(128, flag="--rank", low=1, help="LoRA rank (default 128, as published)")
    init: Path | None = knob(None, flag="--init",
                             help="fine-tune this pytorch_lora_weights.safetensors instead of starting from zero")


def build_parser():
    parser = base_parser("python -m training.train_reference",
                         "Train the Reference Adapter LoRA (published pytorch_lora_weights.safetensors layout).",
                         lr=1e-5, max_steps=15_000, drop=0.0)
    add_knob_options(parser, ReferenceOptions)
    add_knob_options(parser, ModelOptions, only=("exp_adapter",))  # the frozen Expression Adapter
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli(ReferenceTrainer, argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
