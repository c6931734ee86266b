"""Shared training machinery for the Expression and Reference Adapter trainers and the LCM-LoRA distillation.

One loop (`run`) does models, accelerate, checkpoints (published-layout weights + accelerate's
`save_state` for exact resume), logging (TensorBoard when installed), sample images, and the
final export. A trainer subclass only says what is trainable, how the loss is computed, and how
its weights are written in the published layout.

Randomness (batches, noise, timesteps, condition dropout) is drawn from generators seeded by
(seed, step, process), so a resumed run reproduces a straight one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from retarget.errors import quiet_libraries
from retarget.errors import BadInputError, RetargetError, first_line, run_command
from retarget.outputs import claim_folder, write_json
from training.checkpoints import (  # noqa: F401 (the trainers' and tests' imports)
    CHECKPOINT_RE, EXTRA_STATE_FILE, LOSSES_FILE, STATE_FILE, TRAINABLE_FILE, check_training_output, checkpoints, read_step,
    verify_checkpoint,
)
from training.components import adapter_file, load_components, lora_weights_of, tensorboard_available  # noqa: F401
from training.options import base_parser, check_args  # noqa: F401
from training.trainer import AdapterTrainer  # noqa: F401

log = logging.getLogger("training")


def run(trainer: AdapterTrainer, args: argparse.Namespace, exp_kind_for_data) -> dict:
    """Train; returns {"step", "losses"}. exp_kind_for_data(files) -> the expression kind to read (may be called after build)."""
    check_inputs(args)
    training = TrainingRun(trainer, args)
    dataset, exp_kind = training.load_models(exp_kind_for_data)
    training.prepare_optimizer()
    start = training.resume()
    training.claim_output()
    return training.train(dataset, exp_kind, start)


def check_inputs(args: argparse.Namespace) -> None:
    """Every refusal that needs no model: the knobs, the dataset folder, the output folder, the precision."""
    from training.data import FaceDataset

    check_args(args)
    if not args.data.exists():
        raise BadInputError(f"--data {args.data}: no such folder")
    FaceDataset.check_folder(args.data)
    check_training_output(args)
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise RetargetError("--mixed-precision fp16 needs a CUDA GPU; use bf16 or no on this machine")


class TrainingRun:
    """One run's steps (models, optimizer, resume, output folder, the loop), over the accelerate state they share."""

    def __init__(self, trainer: AdapterTrainer, args: argparse.Namespace):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        self.trainer, self.args, self.out = trainer, args, Path(args.out)
        self.log_with = "tensorboard" if args.tensorboard and tensorboard_available() else None
        try:
            self.accelerator = Accelerator(
                cpu=not torch.cuda.is_available(),
                mixed_precision=args.mixed_precision,
                log_with=self.log_with,
                project_config=ProjectConfiguration(project_dir=str(self.out), logging_dir=str(self.out / "logs")),
            )
        except (ValueError, RuntimeError) as err:
            raise RetargetError(f"cannot set up training ({first_line(err)})") from None
        self.main_process = self.accelerator.is_main_process

    def say(self, text: str) -> None:
        if self.main_process:
            print(text, file=sys.stderr, flush=True)

    def load_models(self, exp_kind_for_data):
        """The frozen parts and the trainer's pipeline, seeded; returns (the dataset, its expression kind)."""
        from accelerate.utils import set_seed

        from retarget.weights.assets import resolve_models
        from training.data import FaceDataset

        set_seed(self.args.seed % 2**32)  # the global RNGs (numpy's take 32 bits); our own draws use the whole seed
        files = resolve_models(self.args.models, progress=self.say)
        components = load_components(files)
        self.trainer.noise_scheduler = components[-1]
        work = Path(tempfile.mkdtemp(prefix="retarget-train-"))
        try:
            self.pipeline = self.trainer.build(files, components[:-1], work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.trainer.pipeline = self.pipeline
        exp_kind = exp_kind_for_data(self.pipeline)
        dataset = FaceDataset(self.args.data, exp_kind, image_size=self.pipeline.image_size)
        if self.trainer.uses_pairs and not dataset.has_cross_pairs:
            self.say("warning: no clip in the dataset has two frames; training on self-pairs (reference = target)")
        return dataset, exp_kind

    def prepare_optimizer(self) -> None:
        """Frozen weights in the compute precision, trainable ones in fp32 (as diffusers' LoRA scripts do), AdamW."""
        from diffusers.optimization import get_scheduler

        args, accelerator, unet = self.args, self.accelerator, self.pipeline.unet
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
        device = accelerator.device
        self.pipeline.vae.to(device, self.weight_dtype)
        self.pipeline.id_encoder.text_encoder.to(device, self.weight_dtype)
        unet.to(device, self.weight_dtype)
        unet.requires_grad_(False)
        self.params = self.trainer.trainable_named_parameters()
        if not self.params:
            raise RetargetError("nothing to train: no trainable parameters found")
        for _, p in self.params:
            p.data = p.data.float()
            p.requires_grad_(True)
        unet.train()
        if args.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        optimizer = torch.optim.AdamW([p for _, p in self.params], lr=args.lr, weight_decay=args.weight_decay)
        lr_scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=args.lr_warmup * accelerator.num_processes)
        self.model, self.optimizer, self.lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
        accelerator.register_save_state_pre_hook(self._save_hook)
        accelerator.register_load_state_pre_hook(self._load_hook)

    # Checkpoints hold only the trainable tensors (not the frozen UNet), through accelerate's hooks.
    def _save_hook(self, models, weights, output_dir) -> None:
        if self.main_process:
            from safetensors.torch import save_file

            save_file(self.trainer.trainable_state(), os.path.join(output_dir, TRAINABLE_FILE))
            extra = self.trainer.extra_state()
            if extra:
                save_file(extra, os.path.join(output_dir, EXTRA_STATE_FILE))
        while weights:
            weights.pop()

    def _load_hook(self, models, input_dir) -> None:
        from safetensors.torch import load_file

        state = load_file(os.path.join(input_dir, TRAINABLE_FILE))
        named = dict(self.trainer.trainable_named_parameters())
        if set(state) != set(named):
            raise BadInputError(f"{input_dir}: checkpoint does not match this trainer's parameters")
        with torch.no_grad():
            for name, value in state.items():
                named[name].copy_(value.to(named[name].device, named[name].dtype))
        extra = os.path.join(input_dir, EXTRA_STATE_FILE)
        self.trainer.load_extra_state(load_file(extra) if os.path.isfile(extra) else {})
        while models:
            models.pop()

    def resume(self) -> int:
        """--resume: the checkpoint's state loaded (verified first); returns the step to start from."""
        args, out = self.args, self.out
        start = 0
        if args.resume:
            found = checkpoints(out)
            if args.resume != "latest":
                path = Path(args.resume)
                if not (path / STATE_FILE).is_file():
                    raise BadInputError(f"--resume {path}: not a checkpoint folder (no {STATE_FILE})")
            elif found:
                path = found[-1][1]
            else:
                path = None
                self.say(f"no checkpoint in {out}; starting from step 0")
            if path is not None:
                start = read_step(path)
                verify_checkpoint(path, self.accelerator.process_index)  # accelerate would skip a bad random state silently
                self.accelerator.load_state(str(path))
                self.say(f"resumed from {path} (step {start})")
        if start >= args.max_steps:
            self.say(f"already at step {start} (--max-steps {args.max_steps}); exporting")
        return start

    def claim_output(self) -> None:
        """OUT marked as this program's (a folder of the user's is never taken over), the run's options written."""
        self.fresh = not self.out.exists() or not any(self.out.iterdir())  # a NaN stop may then remove it
        if self.main_process:
            claim_folder(self.out)
            write_json(self.out / "config.json", {k: str(v) if isinstance(v, Path) else v for k, v in vars(self.args).items()})
        if self.log_with:
            self.accelerator.init_trackers(f"{self.trainer.name}_adapter")

    def stop_not_finite(self, message: str) -> None:
        """A NaN/inf stop: no checkpoint of bad weights; a run folder this run made and saved nothing in goes."""
        if self.main_process and self.fresh and self.out.is_dir() and not checkpoints(self.out):
            shutil.rmtree(self.out, ignore_errors=True)  # ours: claimed (marked) by this run, nothing worth keeping
        raise RetargetError(message)

    def check_weights(self, step: int) -> None:
        bad = next((name for name, p in self.params if not bool(torch.isfinite(p).all())), None)
        if bad is not None:
            self.stop_not_finite(f"the weights became NaN/inf by step {step} ({bad}); nothing was saved for it (the last "
                                 f"checkpoint stays); lower --lr or use --mixed-precision bf16/no, then --resume")

    def save_checkpoint(self, step: int) -> None:
        path = self.out / f"checkpoint-{step}"
        self.check_weights(step)  # never a checkpoint of NaN weights
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(path))
        if self.main_process:
            self.trainer.export(path / self.trainer.weights_name)
            write_json(path / STATE_FILE, {"step": step, "trainer": self.trainer.name})
        self.accelerator.wait_for_everyone()

    def train(self, dataset, exp_kind: str, start: int) -> dict:
        """The loop from `start` to --max-steps, checkpoints and samples on the way, then the final export."""
        from tqdm.auto import tqdm

        from training.data import StepBatches

        args, accelerator, trainer = self.args, self.accelerator, self.trainer
        batches = StepBatches(dataset, args.batch_size, args.seed, accelerator.process_index, start, args.max_steps,
                              pairs=trainer.uses_pairs, subset=args.subset)
        loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, num_workers=args.num_workers,
                                             persistent_workers=False)
        self.bar = tqdm(total=args.max_steps, initial=start, desc=f"{trainer.name} adapter",
                        disable=not self.main_process or not sys.stderr.isatty())
        losses: list[float] = []
        step, self.started = start, time.perf_counter()
        self.say(f"training the {trainer.name} adapter: {len(dataset)} samples ({exp_kind}), {accelerator.num_processes} "
                 f"process(es) x batch {args.batch_size}, steps {start}->{args.max_steps}, "
                 f"{sum(p.numel() for _, p in self.params):,} trainable parameters")
        for batch in loader:
            losses.append(self.optimizer_step(batch, step))
            step += 1
            self.after_step(step, start, losses[-1], dataset)
        self.bar.close()
        self.check_weights(step)
        accelerator.wait_for_everyone()
        if self.main_process:
            trainer.export(self.out / trainer.weights_name)
            self.say(f"wrote {self.out / trainer.weights_name} (step {step})")
        accelerator.end_training()
        return {"step": step, "losses": losses}

    def optimizer_step(self, batch, step: int) -> float:
        """One batch: loss, backward, clipping, AdamW; returns the loss averaged over the processes."""
        args, accelerator = self.args, self.accelerator
        gen = torch.Generator().manual_seed((args.seed * 1_000_003 + step * 7919 + accelerator.process_index * 104_729 + 17) % 2**63)
        loss = self.trainer.compute_loss(self.model, batch, gen, self.weight_dtype)
        if not torch.isfinite(loss):
            self.stop_not_finite(f"the loss became {loss.item()} at step {step}; lower --lr or use --mixed-precision bf16/no")
        accelerator.backward(loss)
        if accelerator.sync_gradients and args.max_grad_norm > 0:
            accelerator.clip_grad_norm_([p for _, p in self.params], args.max_grad_norm)
        self.optimizer.step()
        self.trainer.after_optimizer_step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return accelerator.gather(loss.detach()[None]).mean().item()

    def after_step(self, step: int, start: int, value: float, dataset) -> None:
        """The step's loss logged; a checkpoint and sample images when they are due."""
        args, accelerator = self.args, self.accelerator
        if self.main_process:
            with (self.out / LOSSES_FILE).open("a") as handle:
                handle.write(json.dumps({"step": step, "loss": value}) + "\n")
        accelerator.log({"loss": value, "lr": self.lr_scheduler.get_last_lr()[0]}, step=step)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{value:.4f}")
        if args.log_every and step % args.log_every == 0 and not sys.stderr.isatty():
            self.say(f"step {step}/{args.max_steps} loss {value:.4f} ({(time.perf_counter() - self.started) / (step - start):.2f} s/step)")
        if args.save_every and step % args.save_every == 0:
            self.save_checkpoint(step)
        if args.sample_every and step % args.sample_every == 0:
            if self.main_process:
                with torch.no_grad(), accelerator.autocast():
                    self.trainer.sample_images(dataset, step, self.out)
            accelerator.wait_for_everyone()


def cli(trainer_cls, argv: list[str] | None, parser: argparse.ArgumentParser) -> int:
    """Parse, train, and turn every user error into one line and a non-zero exit."""
    args = parser.parse_args(argv)
    quiet_libraries()

    def body() -> int:
        trainer_cls(args).main_run()
        return 0

    return run_command(parser.prog, body, interrupted="interrupted (resume from the last checkpoint with --resume)")
