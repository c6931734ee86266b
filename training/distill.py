"""`python -m training.distill`: latent consistency distillation of a LoRA on the Arc2Face UNet (LCM-LoRA).

Teacher: the full model as the paper samples it (Expression Adapter, Reference Adapter at its
scale, classifier-free guidance 3 with a zero expression and the empty prompt in the
unconditional half), one DDIM step over the skipping-step grid of LCMScheduler (50 steps of 20).
Student: the same UNet with the LCM-LoRA on top, no guidance, conditioned on the same inputs
(identity embedding, expression vector, reference features of another frame of the same clip).
Target: the student with EMA weights, one grid step later, through the LCM boundary conditions
(c_skip, c_out) that LCMScheduler applies at inference. Loss: pseudo-Huber.

Every UNet call goes through RetargetPipeline.conditioning / noise_prediction, the calls the
generator itself makes, so the teacher is exactly the paper's sampler and the student exactly
the `lcm` preset. The LoRA starts as a file in diffusers' LoRA format loaded by
RetargetPipeline.load_lcm_lora (the app's loader, adapter "lcm", beside "reference") and is saved
in the same format: `OUT/pytorch_lora_weights.safetensors` loads with `--preset lcm --lcm-lora`.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from retarget.config import PAPER_CFG
from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.knobs import knob, validate_knobs
from retarget.errors import BadInputError, RetargetError
from training.common import AdapterTrainer, adapter_file, base_parser, cli, lora_weights_of, run

WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
# The modules LCM-LoRA (latent-consistency/lcm-lora-sdv1-5) adapts: attention, feed-forward, resnets, resamplers.
LCM_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1", "conv2",
                    "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj")


def lcm_lora_modules(unet) -> list[tuple[str, torch.nn.Module]]:
    """The UNet's Linear/Conv2d layers that LCM-LoRA adapts (peft's suffix matching; not the adapters' own layers)."""
    found = []
    for name, module in unet.named_modules():
        if ".processor." in name or not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            continue
        if any(name == t or name.endswith("." + t) for t in LCM_LORA_TARGETS):
            found.append((name, module))
    return found


def initial_lcm_lora(unet, rank: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A LoRA that starts as a no-op (up = 0), down initialised as peft does (Kaiming-uniform), diffusers' keys."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in lcm_lora_modules(unet):
        if isinstance(module, torch.nn.Conv2d):
            down_shape = (rank, module.in_channels, *module.kernel_size)
            up_shape = (module.out_channels, rank, 1, 1)
        else:
            down_shape, up_shape = (rank, module.in_features), (module.out_features, rank)
        fan_in = math.prod(down_shape[1:])
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5))
        state[f"{name}.lora_A.weight"] = ((torch.rand(down_shape, generator=gen) * 2 - 1) * bound).contiguous()
        state[f"{name}.lora_B.weight"] = torch.zeros(up_shape)
    return state


def save_lcm_lora(state: dict[str, torch.Tensor], path: Path) -> None:
    """diffusers' LoRA file (`unet.` prefix, lora_A/lora_B), written under a temporary name and renamed."""
    from diffusers import StableDiffusionPipeline

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        StableDiffusionPipeline.save_lora_weights(work, unet_lora_layers=state, weight_name=WEIGHTS_NAME)
        os.replace(work / WEIGHTS_NAME, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def lcm_lora_state_of(unet) -> dict[str, torch.Tensor]:
    from retarget.pipeline import LCM_ADAPTER

    state = {}
    for name, (down, up) in lora_weights_of(unet, LCM_ADAPTER).items():
        state[f"{name}.lora_A.weight"], state[f"{name}.lora_B.weight"] = down, up
    if not state:
        raise RetargetError("internal: no LCM-LoRA attached to the UNet")
    return state


def pseudo_huber(pred: torch.Tensor, target: torch.Tensor, c: float) -> torch.Tensor:
    return (torch.sqrt((pred.float() - target.float()) ** 2 + c * c) - c).mean()


class DistillTrainer(AdapterTrainer):
    name = "lcm"
    weights_name = WEIGHTS_NAME

    def __init__(self, args):
        super().__init__(args)
        self.uses_pairs = args.use_reference  # reference frame from the same clip, as the Reference Adapter trains
        self.ema: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ models
    def build(self, files, components, work: Path):
        from retarget.pipeline import RetargetPipeline
        from retarget.config.generation import GenerationSettings

        unet, vae, text_encoder, tokenizer, sampler = components
        args = self.args
        exp_adapter = adapter_file(args.exp_adapter, files.exp_adapter, "--exp-adapter", f"no Expression Adapter in {files.description}")
        ref_lora = None
        if args.use_reference:
            ref_lora = adapter_file(args.ref_lora, files.ref_lora, "--ref-lora",
                                    f"no Reference Adapter in {files.description} (or train without it: --no-reference)")
        if args.init is not None:
            init = args.init
            local = Path(init).expanduser()
            if not local.exists() and (local.suffix or local.is_absolute() or init.startswith(".")):
                raise RetargetError(f"--init {init}: no such file or folder")
        else:
            init = work / WEIGHTS_NAME
            save_lcm_lora(initial_lcm_lora(unet, args.rank, args.seed), init)
        if self.noise_scheduler.config.prediction_type != "epsilon":
            raise RetargetError(f"distillation supports epsilon-prediction models (this scheduler says {self.noise_scheduler.config.prediction_type})")
        pipeline = RetargetPipeline.assemble(unet, vae, text_encoder, tokenizer, sampler, exp_adapter=exp_adapter, ref_lora=ref_lora,
                                             is_test_model=files.is_test_model)
        pipeline.load_lcm_lora(init)
        self.set_schedule(pipeline.scheduler_config)
        common = dict(ref_scale=args.ref_scale, use_reference=args.use_reference, seed=args.seed)
        self.teacher = GenerationSettings(steps=args.sample_steps, cfg=args.teacher_cfg, **common)
        self.student = GenerationSettings(steps=args.student_steps, cfg=1.0, sampler="lcm", **common)
        return pipeline

    def is_trainable(self, name: str) -> bool:
        return ".lora_A.lcm." in name or ".lora_B.lcm." in name

    def export(self, path: Path) -> None:
        save_lcm_lora(lcm_lora_state_of(self.unet), path)

    def sample_settings(self) -> list:
        return [self.teacher, self.student]  # columns: reference, target, teacher (25 steps), student (4 steps)

    # ------------------------------------------------------------------ EMA target network
    def extra_state(self) -> dict[str, torch.Tensor]:
        return {} if self.ema is None else {f"ema.{n}": t.detach().cpu().contiguous() for n, t in self.ema.items()}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        names = {n for n, _ in self.trainable_named_parameters()}
        ema = {n[len("ema."):]: t for n, t in state.items() if n.startswith("ema.")}
        if set(ema) != names:
            raise BadInputError("the checkpoint has no EMA target weights for this LoRA; resume from a training.distill checkpoint")
        device = self.pipeline.device
        self.ema = {n: t.to(device, torch.float32) for n, t in ema.items()}

    def after_optimizer_step(self) -> None:
        decay = self.args.ema_decay
        with torch.no_grad():
            for name, p in self.trainable_named_parameters():
                self.ema[name].mul_(decay).add_(p.detach().float(), alpha=1.0 - decay)

    @contextmanager
    def target_weights(self):
        """The LoRA's weights swapped for their EMA for the duration (no graph is alive: nothing is recorded)."""
        params = self.trainable_named_parameters()
        online = [p.detach().clone() for _, p in params]
        with torch.no_grad():
            for name, p in params:
                p.copy_(self.ema[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for (_, p), value in zip(params, online):
                    p.copy_(value)

    # ------------------------------------------------------------------ the objective
    def set_schedule(self, scheduler_config) -> None:
        """The noise schedule, and the grid the app's LCMScheduler samples on (original_inference_steps: 50 steps of 20)."""
        from diffusers import LCMScheduler

        lcm = LCMScheduler.from_config(scheduler_config)
        self.boundary = lcm.get_scalings_for_boundary_condition_discrete
        self.skip = lcm.config.num_train_timesteps // lcm.config.original_inference_steps
        self.grid = torch.arange(1, lcm.config.original_inference_steps + 1) * self.skip - 1
        self.alphas_cumprod = lcm.alphas_cumprod.float()

    def ddim_step(self, eps: torch.Tensor, start: torch.Tensor, end: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM from `start` to `end` (the skipping-step solver; end 0 uses alphas_cumprod[0], as DDIM does)."""
        alpha_end = self._at(self.alphas_cumprod, end)
        return alpha_end.sqrt() * self.predicted_original(eps, start, sample) + (1 - alpha_end).sqrt() * eps

    def _at(self, table: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return table.to(timesteps.device)[timesteps].view(-1, 1, 1, 1)

    def predicted_original(self, eps: torch.Tensor, timesteps: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        alpha = self._at(self.alphas_cumprod, timesteps)
        return (sample - (1 - alpha).sqrt() * eps) / alpha.sqrt()

    def consistency(self, eps: torch.Tensor, timesteps: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """f(x, t) = c_skip(t) x + c_out(t) x0(x, t): the LCM parametrisation LCMScheduler.step uses."""
        c_skip, c_out = self.boundary(timesteps.float())
        return c_skip.view(-1, 1, 1, 1) * sample + c_out.view(-1, 1, 1, 1) * self.predicted_original(eps, timesteps, sample)

    def identity_context(self, batch: dict):
        """The per-identity inputs the app computes once: prompt embedding and the reference frame's features."""
        references = None
        if self.uses_pairs:
            # back to the crops' uint8 values (exact: the pixels were made from them) for the pipeline's reference encoding
            references = ((batch["ref_pixels"] + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return self.pipeline.prepare_identity(self.identity_vectors(batch).numpy(), references)

    def compute_loss(self, model, batch: dict, gen: torch.Generator, weight_dtype: torch.dtype) -> torch.Tensor:
        pipe, args = self.pipeline, self.args
        latents, noise = self.latents_and_noise(batch, gen, weight_dtype)
        device, bsz = latents.device, latents.shape[0]
        if self.ema is None:
            self.ema = {n: p.detach().float().clone() for n, p in self.trainable_named_parameters()}
        with torch.no_grad():
            if args.fixed_timestep is not None:  # the nearest grid timestep
                index = torch.full((bsz,), int(torch.argmin((self.grid - args.fixed_timestep).abs())))
            else:
                index = torch.randint(0, len(self.grid), (bsz,), generator=gen)
            start = self.grid[index].to(device)
            end = (start - self.skip).clamp(min=0)
            noisy = self.noise_scheduler.add_noise(latents, noise, start)
            context = self.identity_context(batch)
            expressions = batch["expression"].float()
            # Teacher: one DDIM step start -> end along the guided probability-flow ODE.
            teacher = pipe.conditioning(context, expressions, self.teacher)
            uncond_eps, cond_eps = pipe.noise_prediction(noisy, start, teacher)
            eps = cond_eps if uncond_eps is None else uncond_eps + args.teacher_cfg * (cond_eps - uncond_eps)
            x_end = self.ddim_step(eps, start, end, noisy)
            # Target: the EMA student's consistency output at the teacher's point.
            student = pipe.conditioning(context, expressions, self.student)
            with self.target_weights():
                _, target_eps = pipe.noise_prediction(x_end, end, student)
            target = self.consistency(target_eps, end, x_end)
        # The conditioning calls toggled peft's requires_grad flags: only the LCM-LoRA learns.
        for name, p in self.unet.named_parameters():
            p.requires_grad_(self.is_trainable(name))
        # The reference goes with the call (gradient checkpointing re-runs the attention with the same arguments).
        _, student_eps = pipe.noise_prediction(noisy, start, student, unet=model)
        return pseudo_huber(self.consistency(student_eps, start, noisy), target, args.huber_c)

    def main_run(self) -> dict:
        validate_knobs(from_args(DistillOptions, self.args))
        return run(self, self.args, lambda pipeline: pipeline.expression_kind)


def _below_one(name: str, value: float) -> None:
    if value >= 1:
        raise RetargetError(f"{name} must be less than 1 (got {value}; 0 = the online student)")


@dataclass
class DistillOptions:
    """The distillation's own knobs (the loop's are training.options.TrainingOptions)."""

    teacher_cfg: float = knob(PAPER_CFG, flag="--teacher-cfg", low=1.0,
                              help=f"teacher's classifier-free guidance (default {PAPER_CFG})")
    rank: int = knob(64, flag="--rank", low=1, help="LoRA rank (default 64, as LCM-LoRA)")
    init: str | None = knob(None, flag="--init",
                            help="start from this LCM-LoRA (file, folder or hub id, e.g. latent-consistency/lcm-lora-sdv1-5)")
    ema_decay: float = knob(0.95, flag="--ema-decay", low=0.0, check=_below_one,
                            help="EMA decay of the target network (default 0.95; 0 = the online student)")
    # c = 0 would be |x|, whose gradient at 0 is undefined.
    huber_c: float = knob(0.001, flag="--huber-c", low=0.0, low_open=True, help="pseudo-Huber loss constant (default 0.001)")
    student_steps: int = knob(4, flag="--student-steps", low=1, help="LCM steps of the student's sample images (default 4)")


def build_parser():
    from retarget.config import GenerationSettings, ModelOptions

    parser = base_parser("python -m training.distill",
                         "Distil Arc2Face with both adapters into a few-step LCM-LoRA (diffusers' LoRA format, for --preset lcm).",
                         lr=1e-4, max_steps=4000, drop=None)
    add_knob_options(parser, ModelOptions, only=("exp_adapter", "ref_lora"))
    add_knob_options(parser, GenerationSettings, only=("use_reference", "ref_scale"))  # --no-reference: distil without it
    add_knob_options(parser, DistillOptions)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli(DistillTrainer, argv, build_parser())


if __name__ == "__main__":
    sys.exit(main())
