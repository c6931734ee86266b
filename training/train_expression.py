"""`python -m training.train_expression`: train the Expression Adapter (IP-Adapter layout) on a dataset.

Frozen: the Arc2Face UNet, the ID encoder, the VAE. Trainable: the image-projection MLP and the
per-layer to_k_ip/to_v_ip. A fresh adapter is written in the published layout and attached
through RetargetPipeline.assemble, exactly like a published file; the result is saved the same way.
The Reference Adapter is off (not loaded) during this training.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.knobs import knob, validate_knobs
from retarget.errors import RetargetError
from training.common import AdapterTrainer, base_parser, cli, run
from training.data import EXP_KINDS

WEIGHTS_NAME = "exp_adapter.bin"


def initial_expression_adapter(unet, exp_dim: int, seed: int = 0, num_tokens: int = 4, mult: int = 2) -> dict:
    """A fresh adapter in the published layout: default Linear init for the MLP, unit LayerNorm, and
    to_k_ip/to_v_ip copied from each cross-attention's text to_k/to_v (the IP-Adapter recipe)."""
    from torch import nn

    from retarget.models.adapters import cross_attention_widths

    dim = unet.config.cross_attention_dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        proj0 = nn.Linear(exp_dim, mult * exp_dim)
        proj2 = nn.Linear(mult * exp_dim, num_tokens * dim)
    image_proj = {
        "proj.0.weight": proj0.weight.detach().clone(), "proj.0.bias": proj0.bias.detach().clone(),
        "proj.2.weight": proj2.weight.detach().clone(), "proj.2.bias": proj2.bias.detach().clone(),
        "norm.weight": torch.ones(dim), "norm.bias": torch.zeros(dim),
    }
    modules = dict(unet.named_modules())
    cross = [name[: -len(".processor")] for name in unet.attn_processors if name.endswith("attn2.processor")]
    assert len(cross) == len(cross_attention_widths(unet))
    ip_adapter = {}
    for index, path in enumerate(cross):
        attn = modules[path]
        ip_adapter[f"{2 * index + 1}.to_k_ip.weight"] = attn.to_k.weight.detach().float().clone()
        ip_adapter[f"{2 * index + 1}.to_v_ip.weight"] = attn.to_v.weight.detach().float().clone()
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def expression_adapter_state_of(unet) -> dict:
    """The attached adapter's current weights in the published layout (the inverse of diffusers' loader)."""
    projection = unet.encoder_hid_proj.image_projection_layers[0]

    def t(x):
        return x.detach().float().cpu().clone().contiguous()

    image_proj = {
        "proj.0.weight": t(projection.ff.net[0].proj.weight), "proj.0.bias": t(projection.ff.net[0].proj.bias),
        "proj.2.weight": t(projection.ff.net[2].weight), "proj.2.bias": t(projection.ff.net[2].bias),
        "norm.weight": t(projection.norm.weight), "norm.bias": t(projection.norm.bias),
    }
    ip_adapter = {}
    cross = [p for name, p in unet.attn_processors.items() if name.endswith("attn2.processor")]
    for index, processor in enumerate(cross):
        ip_adapter[f"{2 * index + 1}.to_k_ip.weight"] = t(processor.to_k_ip[0].weight)
        ip_adapter[f"{2 * index + 1}.to_v_ip.weight"] = t(processor.to_v_ip[0].weight)
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def save_expression_adapter(state: dict, path: Path) -> None:
    from retarget.outputs import atomic_write

    atomic_write(path, lambda temp: torch.save(state, temp))


class ExpressionTrainer(AdapterTrainer):
    name = "expression"
    weights_name = WEIGHTS_NAME

    def build(self, files, components, work: Path):
        from retarget.pipeline import RetargetPipeline

        unet, vae, text_encoder, tokenizer, sampler = components
        args = self.args
        if args.init is not None:
            init = args.init
            if not Path(init).is_file():
                raise RetargetError(f"--init {init}: no such file")
        else:
            init = work / WEIGHTS_NAME
            exp_dim = EXP_KINDS[args.exp_kind or "blendshapes52"]
            save_expression_adapter(initial_expression_adapter(unet, exp_dim, args.seed, args.num_tokens, args.hidden_mult), init)
        pipeline = RetargetPipeline.assemble(unet, vae, text_encoder, tokenizer, sampler, exp_adapter=init, ref_lora=None,
                                             is_test_model=files.is_test_model)
        if args.exp_kind and pipeline.expression_kind != args.exp_kind:
            raise RetargetError(f"--init {init} takes {pipeline.exp_dim} values ({pipeline.expression_kind}), not {args.exp_kind}")
        pipeline.set_expression_scale(1.0)
        return pipeline

    def is_trainable(self, name: str) -> bool:
        return name.startswith("encoder_hid_proj.") or ".to_k_ip." in name or ".to_v_ip." in name

    def export(self, path: Path) -> None:
        save_expression_adapter(expression_adapter_state_of(self.unet), path)

    def main_run(self) -> dict:
        validate_knobs(from_args(ExpressionOptions, self.args))
        return run(self, self.args, lambda pipeline: pipeline.expression_kind)


@dataclass
class ExpressionOptions:
    """The Expression Adapter trainer's own knobs (the loop's are training.options.TrainingOptions)."""

    exp_kind: str | None = knob(None, flag="--exp-kind", choices=tuple(EXP_KINDS), metavar=None,
                                help="expression input: blendshapes52 (default), blendshapes51 (no _neutral) or flame55 "
                                     "(needs --smirk at annotation)")
    init: Path | None = knob(None, flag="--init", help="fine-tune this exp_adapter.bin instead of starting fresh")
    num_tokens: int = knob(4, flag="--num-tokens", low=1, help="expression tokens (default 4, as published)")
    hidden_mult: int = knob(2, flag="--hidden-mult", low=1, help="MLP hidden width = mult x input width (default 2, as published)")


def build_parser():
    parser = base_parser("python -m training.train_expression", "Train the Expression Adapter (published exp_adapter.bin layout).",
                         lr=1e-4, max_steps=300_000, drop=0.05)
    add_knob_options(parser, ExpressionOptions)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli(ExpressionTrainer, argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
