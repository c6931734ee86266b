"""AdapterTrainer: what a trainer subclass says (trainable parameters, loss, export) and the shared per-step work."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from retarget.outputs import write_image


class AdapterTrainer:
    """Subclasses: build the pipeline with the adapter attached, name its trainable parameters,
    compute the loss, export the published file."""

    name = "adapter"
    weights_name = "weights"
    uses_pairs = False

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.pipeline = None
        self.noise_scheduler = None
        self.exp_kind = None

    # -- to override
    def build(self, files, components, work: Path):  # returns the RetargetPipeline
        raise NotImplementedError

    def is_trainable(self, name: str) -> bool:
        raise NotImplementedError

    def export(self, path: Path) -> None:
        raise NotImplementedError

    def before_forward(self, batch: dict, prompt: torch.Tensor) -> dict:
        """Per-step work before the UNet call (the reference pass); returns extra UNet keyword arguments."""
        return {}

    def after_optimizer_step(self) -> None:
        """Called once the trainable weights have been updated (e.g. to move an EMA)."""

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors besides the trainable ones that exact resume needs (saved with each checkpoint)."""
        return {}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        pass

    def sample_settings(self) -> list:
        """How each sample image column is rendered (GenerationSettings); one column per entry."""
        from retarget.config.generation import GenerationSettings

        return [GenerationSettings(steps=self.args.sample_steps, seed=self.args.seed)]

    def restore_after_sampling(self) -> None:
        self.pipeline.set_expression_scale(1.0)

    # -- shared
    @property
    def unet(self):
        return self.pipeline.unet

    def trainable_named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [(n, p) for n, p in self.unet.named_parameters() if self.is_trainable(n)]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().float().cpu().contiguous() for n, p in self.trainable_named_parameters()}

    def expression_kwargs(self, expressions: torch.Tensor) -> dict:
        return self.pipeline.expression_inputs(expressions)

    @torch.no_grad()
    def latents_and_noise(self, batch: dict, gen: torch.Generator, weight_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's target frames as scaled VAE latents (fp32) and their noise (drawn from `gen`, or fixed per sample)."""
        pipe, args = self.pipeline, self.args
        device = pipe.device
        pixels = batch["pixels"].to(device, weight_dtype)
        dist = pipe.vae.encode(pixels).latent_dist
        latents = dist.mean if args.fixed_noise else dist.sample(generator=gen).to(device)
        latents = latents.float() * pipe.vae.config.scaling_factor
        if args.fixed_noise:
            noise = torch.cat([torch.randn((1,) + latents.shape[1:], generator=torch.Generator().manual_seed((args.seed * 7 + int(i)) % 2**63))
                               for i in batch["index"]])
        else:
            noise = torch.randn(latents.shape, generator=gen)
        return latents, noise.to(device)

    @staticmethod
    def identity_vectors(batch: dict) -> torch.Tensor:
        """ArcFace vectors the target is conditioned on: the reference frame's when pairs are drawn (as at inference)."""
        return (batch["ref_arcface"] if "ref_arcface" in batch else batch["arcface"]).float()

    def compute_loss(self, model, batch: dict, gen: torch.Generator, weight_dtype: torch.dtype) -> torch.Tensor:
        pipe, args = self.pipeline, self.args
        device = pipe.device
        latents, noise = self.latents_and_noise(batch, gen, weight_dtype)
        bsz = latents.shape[0]
        with torch.no_grad():
            T = self.noise_scheduler.config.num_train_timesteps
            if args.fixed_timestep is not None:
                timesteps = torch.full((bsz,), args.fixed_timestep, dtype=torch.long)
            else:
                timesteps = torch.randint(0, T, (bsz,), generator=gen)
            timesteps = timesteps.to(device)
            noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
            prompt = pipe.id_encoder.encode(self.identity_vectors(batch))
            drop_id = torch.rand(bsz, generator=gen) < args.drop_id
            if drop_id.any():
                prompt = prompt.clone()
                prompt[drop_id.to(device)] = pipe.id_encoder.encode_unconditional().to(prompt.dtype)
            expressions = batch["expression"].float()
            drop_exp = torch.rand(bsz, generator=gen) < args.drop_expression
            expressions[drop_exp] = 0.0
            expressions = expressions.to(device, weight_dtype)
            if self.noise_scheduler.config.prediction_type == "v_prediction":
                target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
            else:
                target = noise
        extra = self.before_forward(batch, prompt)
        pred = model(noisy.to(weight_dtype), timesteps, encoder_hidden_states=prompt.to(weight_dtype),
                     **self.expression_kwargs(expressions), **extra).sample
        return F.mse_loss(pred.float(), target.float())

    def sample_images(self, dataset, step: int, out: Path) -> Path:
        """Render a few dataset samples (target expression, own identity/reference) next to their crops."""
        from PIL import Image

        pipe, args = self.pipeline, self.args
        count = min(args.sample_count, len(dataset))
        indices = np.linspace(0, len(dataset) - 1, count).round().astype(int).tolist()
        rows = []
        gen = torch.Generator().manual_seed(args.seed)
        for index in indices:
            ref = dataset.partner(index, gen) if self.uses_pairs else index
            context = pipe.prepare_identity(dataset.samples[ref].arcface[None], dataset.crop_uint8(ref)[None])
            images = [pipe.generate(context, dataset.samples[index].expression[None], settings)[0] for settings in self.sample_settings()]
            size = images[0].shape[0]
            tiles = [dataset.crop_uint8(ref), dataset.crop_uint8(index), *images]
            tiles = [np.asarray(Image.fromarray(t).resize((size, size))) for t in tiles]
            rows.append(np.concatenate(tiles, axis=1))
        self.restore_after_sampling()
        return write_image(out / "samples" / f"step-{step:07d}.png", np.concatenate(rows, axis=0))
