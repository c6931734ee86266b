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
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler

    from retarget.weights.assets import resolve_models
    from training.data import FaceDataset, StepBatches

    check_args(args)
    if not args.data.exists():
        raise BadInputError(f"--data {args.data}: no such folder")
    FaceDataset.check_folder(args.data)
    out: Path = args.out
    check_training_output(args)
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise RetargetError("--mixed-precision fp16 needs a CUDA GPU; use bf16 or no on this machine")
    log_with = None if args.no_tensorboard or not tensorboard_available() else "tensorboard"
    try:
        accelerator = Accelerator(
            cpu=not torch.cuda.is_available(),
            mixed_precision=args.mixed_precision,
            log_with=log_with,
            project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        )
    except (ValueError, RuntimeError) as err:
        raise RetargetError(f"cannot set up training ({first_line(err)})") from None
    main_process = accelerator.is_main_process

    def say(text: str) -> None:
        if main_process:
            print(text, file=sys.stderr, flush=True)

    set_seed(args.seed)
    files = resolve_models(args.models, progress=say)
    components = load_components(files)
    trainer.noise_scheduler = components[-1]
    work = Path(tempfile.mkdtemp(prefix="retarget-train-"))
    try:
        pipeline = trainer.build(files, components[:-1], work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    trainer.pipeline = pipeline
    unet = pipeline.unet
    exp_kind = exp_kind_for_data(pipeline)
    dataset = FaceDataset(args.data, exp_kind, image_size=pipeline.image_size)
    if trainer.uses_pairs and not dataset.has_cross_pairs:
        say("warning: no clip in the dataset has two frames; training on self-pairs (reference = target)")

    # frozen weights in the compute precision, trainable ones in fp32 (as diffusers' LoRA scripts do)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    device = accelerator.device
    pipeline.vae.to(device, weight_dtype)
    pipeline.id_encoder.text_encoder.to(device, weight_dtype)
    unet.to(device, weight_dtype)
    unet.requires_grad_(False)
    params = trainer.trainable_named_parameters()
    if not params:
        raise RetargetError("nothing to train: no trainable parameters found")
    for _, p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    unet.train()
    if args.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW([p for _, p in params], lr=args.lr, weight_decay=args.weight_decay)
    lr_scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=args.lr_warmup * accelerator.num_processes)
    model, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)

    # Checkpoints hold only the trainable tensors (not the frozen UNet), through accelerate's hooks.
    def save_hook(models, weights, output_dir):
        if main_process:
            from safetensors.torch import save_file

            save_file(trainer.trainable_state(), os.path.join(output_dir, TRAINABLE_FILE))
            extra = trainer.extra_state()
            if extra:
                save_file(extra, os.path.join(output_dir, EXTRA_STATE_FILE))
        while weights:
            weights.pop()

    def load_hook(models, input_dir):
        from safetensors.torch import load_file

        state = load_file(os.path.join(input_dir, TRAINABLE_FILE))
        named = dict(trainer.trainable_named_parameters())
        if set(state) != set(named):
            raise BadInputError(f"{input_dir}: checkpoint does not match this trainer's parameters")
        with torch.no_grad():
            for name, value in state.items():
                named[name].copy_(value.to(named[name].device, named[name].dtype))
        extra = os.path.join(input_dir, EXTRA_STATE_FILE)
        trainer.load_extra_state(load_file(extra) if os.path.isfile(extra) else {})
        while models:
            models.pop()

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)

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
            say(f"no checkpoint in {out}; starting from step 0")
        if path is not None:
            start = read_step(path)
            verify_checkpoint(path, accelerator.process_index)  # accelerate would skip a bad random state silently
            accelerator.load_state(str(path))
            say(f"resumed from {path} (step {start})")
    if start >= args.max_steps:
        say(f"already at step {start} (--max-steps {args.max_steps}); exporting")

    fresh = not out.exists() or not any(out.iterdir())

    def stop_not_finite(message: str) -> None:
        """A NaN/inf stop: no checkpoint of bad weights; a run folder this run made and saved nothing in goes."""
        if main_process and fresh and out.is_dir() and not checkpoints(out):
            shutil.rmtree(out, ignore_errors=True)  # ours: claimed (marked) by this run, nothing worth keeping
        raise RetargetError(message)

    def check_weights(step: int) -> None:
        bad = next((name for name, p in params if not bool(torch.isfinite(p).all())), None)
        if bad is not None:
            stop_not_finite(f"the weights became NaN/inf by step {step} ({bad}); nothing was saved for it (the last "
                            f"checkpoint stays); lower --lr or use --mixed-precision bf16/no, then --resume")

    if main_process:
        claim_folder(out)
        write_json(out / "config.json", {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
    if log_with:
        accelerator.init_trackers(f"{trainer.name}_adapter")

    def save_checkpoint(step: int) -> None:
        path = out / f"checkpoint-{step}"
        check_weights(step)  # never a checkpoint of NaN weights
        accelerator.wait_for_everyone()
        accelerator.save_state(str(path))
        if main_process:
            trainer.export(path / trainer.weights_name)
            write_json(path / STATE_FILE, {"step": step, "trainer": trainer.name})
        accelerator.wait_for_everyone()

    batches = StepBatches(dataset, args.batch_size, args.seed, accelerator.process_index, start, args.max_steps,
                          pairs=trainer.uses_pairs, subset=args.subset)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, num_workers=args.num_workers,
                                         persistent_workers=False)
    from tqdm.auto import tqdm

    bar = tqdm(total=args.max_steps, initial=start, desc=f"{trainer.name} adapter", disable=not main_process or not sys.stderr.isatty())
    losses: list[float] = []
    step = start
    started = time.perf_counter()
    say(f"training the {trainer.name} adapter: {len(dataset)} samples ({exp_kind}), {accelerator.num_processes} process(es) "
        f"x batch {args.batch_size}, steps {start}->{args.max_steps}, {sum(p.numel() for _, p in params):,} trainable parameters")
    for batch in loader:
        gen = torch.Generator().manual_seed((args.seed * 1_000_003 + step * 7919 + accelerator.process_index * 104_729 + 17) % 2**63)
        loss = trainer.compute_loss(model, batch, gen, weight_dtype)
        if not torch.isfinite(loss):
            stop_not_finite(f"the loss became {loss.item()} at step {step}; lower --lr or use --mixed-precision bf16/no")
        accelerator.backward(loss)
        if accelerator.sync_gradients and args.max_grad_norm > 0:
            accelerator.clip_grad_norm_([p for _, p in params], args.max_grad_norm)
        optimizer.step()
        trainer.after_optimizer_step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        value = accelerator.gather(loss.detach()[None]).mean().item()
        losses.append(value)
        if main_process:
            with (out / LOSSES_FILE).open("a") as handle:
                handle.write(json.dumps({"step": step, "loss": value}) + "\n")
        accelerator.log({"loss": value, "lr": lr_scheduler.get_last_lr()[0]}, step=step)
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")
        if args.log_every and step % args.log_every == 0 and not sys.stderr.isatty():
            say(f"step {step}/{args.max_steps} loss {value:.4f} ({(time.perf_counter() - started) / (step - start):.2f} s/step)")
        if args.save_every and step % args.save_every == 0:
            save_checkpoint(step)
        if args.sample_every and step % args.sample_every == 0:
            if main_process:
                with torch.no_grad(), accelerator.autocast():
                    trainer.sample_images(dataset, step, out)
            accelerator.wait_for_everyone()
    bar.close()
    check_weights(step)
    accelerator.wait_for_everyone()
    if main_process:
        trainer.export(out / trainer.weights_name)
        say(f"wrote {out / trainer.weights_name} (step {step})")
    accelerator.end_training()
    return {"step": step, "losses": losses}


def cli(trainer_cls, argv: list[str] | None, parser: argparse.ArgumentParser) -> int:
    """Parse, train, and turn every user error into one line and a non-zero exit."""
    args = parser.parse_args(argv)
    quiet_libraries()

    def body() -> int:
        trainer_cls(args).main_run()
        return 0

    return run_command(parser.prog, body, interrupted="interrupted (resume from the last checkpoint with --resume)")
