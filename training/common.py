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
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from retarget.errors import BadInputError, MissingWeightsError, RetargetError, first_line, run_command
from retarget.outputs import claim_folder, write_image, write_json

log = logging.getLogger("training")
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINABLE_FILE = "trainable.safetensors"
EXTRA_STATE_FILE = "trainer_state.safetensors"  # a trainer's own tensors beyond the trainable ones (e.g. an EMA)
STATE_FILE = "training_state.json"
LOSSES_FILE = "losses.jsonl"


# ---------------------------------------------------------------------------------- arguments
def base_parser(prog: str, description: str, *, lr: float, max_steps: int, drop: float | None) -> argparse.ArgumentParser:
    """The options every trainer shares; drop=None leaves out the condition-dropout options."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder from `python -m training.annotate`")
    parser.add_argument("--models", default="hub", help="hub, a models folder, or random:tiny (test models)")
    parser.add_argument("--out", type=Path, required=True, help="output folder: checkpoints, logs, samples, final weights")
    parser.add_argument("--max-steps", type=int, default=max_steps, help=f"optimizer steps (default {max_steps})")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per process and step (default 8)")
    parser.add_argument("--lr", type=float, default=lr, help=f"AdamW learning rate (default {lr:g})")
    parser.add_argument("--lr-warmup", type=int, default=0, help="linear warm-up steps, then constant (default 0)")
    parser.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (default 1.0; 0 = off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in backward (less memory)")
    if drop is not None:
        parser.add_argument("--drop-expression", type=float, default=drop, help=f"probability of a zero expression (default {drop:g})")
        parser.add_argument("--drop-id", type=float, default=drop, help=f"probability of the empty-prompt embedding (default {drop:g})")
    parser.add_argument("--save-every", type=int, default=1000, help="checkpoint every N steps (default 1000; 0 = only at the end)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                        help="continue from OUT's latest checkpoint (or the one given)")
    parser.add_argument("--sample-every", type=int, default=0, help="write sample images every N steps (default 0 = off)")
    parser.add_argument("--sample-count", type=int, default=2, help="dataset samples rendered per sample image (default 2)")
    parser.add_argument("--sample-steps", type=int, default=25, help="DPM-Solver++ steps for sample images (default 25)")
    parser.add_argument("--log-every", type=int, default=10, help="print the loss every N steps (default 10)")
    parser.add_argument("--num-workers", type=int, default=2, help="data loading processes per training process (default 2)")
    parser.add_argument("--subset", type=int, default=None, help="train on the first N samples only (overfitting checks)")
    parser.add_argument("--fixed-timestep", type=int, default=None, help="always this diffusion timestep (debugging/overfit checks)")
    parser.add_argument("--fixed-noise", action="store_true",
                        help="the same noise for a sample every step, and latents from the VAE mean (overfit checks)")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    return parser


def check_args(args: argparse.Namespace) -> None:
    for name in ("max_steps", "batch_size"):
        if getattr(args, name) < 1:
            raise RetargetError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")
    for name in ("save_every", "sample_every", "lr_warmup", "num_workers"):
        if getattr(args, name) < 0:
            raise RetargetError(f"--{name.replace('_', '-')} must be 0 or more")
    for name in ("drop_expression", "drop_id"):
        if not 0.0 <= getattr(args, name, 0.0) <= 1.0:
            raise RetargetError(f"--{name.replace('_', '-')} must be within [0, 1]")
    from retarget.settings import check_number

    check_number("--lr", args.lr, low=0.0, low_open=True)
    check_number("--weight-decay", args.weight_decay, low=0.0)
    check_number("--max-grad-norm", args.max_grad_norm, low=0.0)
    if not 0 <= args.seed < 2**32:  # numpy's generators take 32-bit seeds
        raise RetargetError(f"--seed must be a whole number from 0 to {2**32 - 1} (got {args.seed})")
    if args.fixed_timestep is not None and not 0 <= args.fixed_timestep < 1000:
        raise RetargetError("--fixed-timestep must be within [0, 999]")
    if args.subset is not None and args.subset < 1:
        raise RetargetError("--subset must be at least 1")


# ---------------------------------------------------------------------------------- models
def load_components(files):
    """The frozen parts, loaded like RetargetPipeline.from_files, plus the DDPM noise scheduler."""
    from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from retarget.errors import MissingWeightsError

    try:
        unet = UNet2DConditionModel.from_pretrained(files.unet, torch_dtype=torch.float32)
        vae = AutoencoderKL.from_pretrained(files.vae, torch_dtype=torch.float32)
        text_encoder = CLIPTextModel.from_pretrained(files.encoder, dtype=torch.float32)
        tokenizer = CLIPTokenizer.from_pretrained(files.tokenizer)
        sampler = DPMSolverMultistepScheduler.from_pretrained(files.scheduler, algorithm_type="dpmsolver++", solver_order=2)
        noise_scheduler = DDPMScheduler.from_pretrained(files.scheduler)
    except (OSError, ValueError) as err:
        raise MissingWeightsError(f"cannot load the models from {files.description}: {first_line(err)}") from None
    return unet, vae, text_encoder, tokenizer, sampler, noise_scheduler


def adapter_file(given: Path | None, default: Path | None, flag: str, missing: str) -> Path:
    """An adapter file from its option, else the models folder's; one clear line when there is none."""
    path = given or default
    if path is None:
        raise MissingWeightsError(f"{missing}; pass {flag} PATH")
    if not Path(path).is_file():
        raise RetargetError(f"{flag} {path}: no such file")
    return Path(path)


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and (p / STATE_FILE).is_file()]
    return sorted(found)


def check_training_output(args: argparse.Namespace) -> None:
    """--out: not an input, writable, and new, empty, or a training folder of ours (so --resume finds it)."""
    from retarget.outputs import check_folder_target, check_output, check_writable, is_ours, mark

    inputs = [("--data", args.data)]
    if args.models != "hub" and not str(args.models).startswith("random:"):
        inputs.append(("--models", args.models))
    check_output(args.out, inputs)
    check_writable(args.out)
    if args.out.is_dir() and not is_ours(args.out) and (args.out / "config.json").is_file() and checkpoints(args.out):
        mark(args.out)  # a training folder written before folders carried the marker
    check_folder_target(args.out)


def read_step(checkpoint: Path) -> int:
    """The step a checkpoint was saved at, from its state file; a damaged file is refused."""
    path = checkpoint / STATE_FILE
    try:
        step = json.loads(path.read_text(encoding="utf-8"))["step"]
        if not isinstance(step, int) or step < 0:
            raise ValueError(step)
    except (OSError, ValueError, KeyError, TypeError):
        raise BadInputError(f"{path}: is damaged (no readable step); resume from an earlier checkpoint with "
                            f"--resume {checkpoint.parent}/checkpoint-N") from None
    return step


def verify_checkpoint(path: Path, process_index: int = 0) -> None:
    """Every file a resume reads loads as tensors only (never unsafely): trainable weights, optimizer,
    scheduler and this process's random state. A bad one is refused, so exact resume is never lost quietly."""
    from accelerate.utils import load as accelerate_load
    from safetensors.torch import load_file

    from retarget.errors import describe_file_error

    hint = f"; resume from an earlier checkpoint with --resume {path.parent}/checkpoint-N"
    trainable = path / TRAINABLE_FILE
    try:
        load_file(trainable)
    except Exception as err:
        raise BadInputError(describe_file_error(trainable, err, "checkpoint file") + hint) from None
    for name in ("optimizer.bin", "scheduler.bin", f"random_states_{process_index}.pkl"):
        file = path / name
        if not file.is_file():
            raise BadInputError(f"{file}: is missing from the checkpoint{hint}")
        try:
            state = accelerate_load(file, map_location="cpu", weights_only=True)  # accelerate's safe globals (numpy states)
        except Exception as err:
            raise BadInputError(describe_file_error(file, err, "checkpoint file") + hint) from None
        if not isinstance(state, dict):
            raise BadInputError(f"{file}: is not a training state (expected a dictionary){hint}")
        if name.startswith("random_states"):
            wanted = ("random_state", "numpy_random_seed", "torch_manual_seed")
            if any(key not in state for key in wanted):
                raise BadInputError(f"{file}: is not a random-state file (missing {', '.join(k for k in wanted if k not in state)}){hint}")


def lora_weights_of(unet, adapter: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module path: (down, up)} of one attached peft LoRA, fp32 on the CPU, its scaling (alpha/r) folded into `up`
    so that a file without alphas (read as alpha = rank) gives the same weights."""
    found = {}
    for name, module in unet.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if lora_a is None or adapter not in lora_a:
            continue
        scaling = float(module.scaling[adapter])
        down = module.lora_A[adapter].weight.detach().float().cpu().clone().contiguous()
        found[name] = (down, (module.lora_B[adapter].weight.detach().float().cpu() * scaling).contiguous())
    return found


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------- trainer base
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
        from retarget.settings import GenerationSettings

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
            noise = torch.cat([torch.randn((1,) + latents.shape[1:], generator=torch.Generator().manual_seed(args.seed * 7 + int(i)))
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


# ---------------------------------------------------------------------------------- the loop
def run(trainer: AdapterTrainer, args: argparse.Namespace, exp_kind_for_data) -> dict:
    """Train; returns {"step", "losses"}. exp_kind_for_data(files) -> the expression kind to read (may be called after build)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler

    from retarget.assets import resolve_models
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

    if main_process:
        claim_folder(out)
        write_json(out / "config.json", {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
    if log_with:
        accelerator.init_trackers(f"{trainer.name}_adapter")

    def save_checkpoint(step: int) -> None:
        path = out / f"checkpoint-{step}"
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
            raise RetargetError(f"the loss became {loss.item()} at step {step}; lower --lr or use --mixed-precision bf16/no")
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
    accelerator.wait_for_everyone()
    if main_process:
        trainer.export(out / trainer.weights_name)
        say(f"wrote {out / trainer.weights_name} (step {step})")
    accelerator.end_training()
    return {"step": step, "losses": losses}


def cli(trainer_cls, argv: list[str] | None, parser: argparse.ArgumentParser) -> int:
    """Parse, train, and turn every user error into one line and a non-zero exit."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    args = parser.parse_args(argv)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()

    def body() -> int:
        trainer_cls(args).main_run()
        return 0

    return run_command(parser.prog, body, interrupted="interrupted (resume from the last checkpoint with --resume)")
