"""RetargetPipeline: identity photo(s) -> context, then batches of expression vectors -> images.

Arc2Face UNet + Expression Adapter (diffusers' IP-Adapter machinery, FaceID-style projection)
+ Reference Adapter (LoRA on self-attention through peft, reference tokens through our
attention processors), sampled with DPM-Solver++ (or LCM) and classifier-free guidance.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from retarget.weights.assets import ModelFiles
from retarget.errors import MissingWeightsError, RetargetError, first_line
from retarget.models.adapters import EXPRESSION_KINDS
from retarget.models.id_encoder import Arc2FaceIdEncoder
from retarget.models.reference_attention import ATTEND, RECORD, ReferenceCall, install_reference_processors, project_reference
from retarget.pipeline import loading, noise as seeded_noise
from retarget.pipeline.attention import AUTO, restrict_attention
from retarget.pipeline.context import IdentityContext
from retarget.pipeline.devices import default_dtype
from retarget.pipeline.fusion import LoraFusion
from retarget.pipeline.finite import check_finite
from retarget.pipeline.schedulers import SchedulerCache
from retarget.pipeline.loading import LCM_ADAPTER, LCM_LORA_HUB_ID, REFERENCE_ADAPTER
from retarget.config.generation import GenerationSettings


class RetargetPipeline:
    """Arc2Face with the Expression and Reference Adapters; one instance per loaded model set.

    Per-identity state lives in the IdentityContext and per-call state is passed to the attention
    processors with each UNet call, so nothing carries over from one call to the next. The
    adapters' scales are the UNet modules' own settings, so calls from several threads take turns
    (a lock), never interleave.
    """

    def __init__(self, sd_pipeline, exp_dim: int | None, has_reference: bool, is_test_model: bool = False):
        self.sd = sd_pipeline
        self.unet = sd_pipeline.unet
        self.vae = sd_pipeline.vae
        self.id_encoder = Arc2FaceIdEncoder(sd_pipeline.text_encoder, sd_pipeline.tokenizer)
        self.scheduler_config = sd_pipeline.scheduler.config
        self.exp_dim = exp_dim
        self.has_reference = has_reference
        self.is_test_model = is_test_model
        install_reference_processors(self.unet)
        self._lock = threading.RLock()
        self._lora_state: tuple | None = None  # (reference scale, LCM on) the UNet's LoRAs are set to
        self._fuse_requested = False
        self._fusion = LoraFusion(self.unet)  # the LoRAs fused into the UNet's weights (generation) or beside them
        # Looked up once, not per call: diffusers' ModelMixin.device/.dtype and attn_processors walk the whole
        # module tree (thousands of modules with the LoRAs loaded). `.to()` converts parameters in place, so one
        # parameter follows the UNet through any later device or dtype change.
        self._weights_probe = self.unet.conv_in.weight
        self._expression_processors = [p for p in self.unet.attn_processors.values() if hasattr(p, "to_k_ip")]
        self._expression_scale: float | None = None
        # Generation merges the LoRAs into the weights (set_adapter_weights); False keeps them beside the base
        # layers, as before (the same images within float rounding; for comparisons).
        self.fuse_loras = True
        self._schedulers = SchedulerCache(self.scheduler_config)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.reference_passes = 0
        self.tiny_vae = None  # TAESD decoder, when chosen for speed
        self.has_lcm = False
        self.attention, self._attention_hooks = AUTO, None  # the attention kernel (use_attention)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_files(
        cls,
        files: ModelFiles,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        exp_adapter: Path | None = None,
        ref_lora: Path | None = None,
        use_exp_adapter: bool = True,
        use_ref_lora: bool = True,
    ) -> "RetargetPipeline":
        device = torch.device(device)
        dtype = dtype or default_dtype(device)
        unet, vae, text_encoder, tokenizer, scheduler = loading.load_components(files, dtype)
        exp_path, lora_path = loading.adapter_files(files, exp_adapter, ref_lora, use_exp_adapter, use_ref_lora)
        generator = cls.assemble(unet, vae, text_encoder, tokenizer, scheduler, exp_path, lora_path, device, dtype,
                                 files.is_test_model)
        # Which file each part came from, so a NaN/inf output can name the broken one (pipeline.finite).
        generator.model_sources = {"unet": files.unet, "vae": files.vae, "encoder": files.encoder,
                                   "exp_adapter": exp_path, "ref_lora": lora_path}
        return generator

    @classmethod
    def assemble(cls, unet, vae, text_encoder, tokenizer, scheduler, exp_adapter=None, ref_lora=None,
                 device="cpu", dtype=torch.float32, is_test_model=False) -> "RetargetPipeline":
        """Put loaded components together and attach the adapter files (published layouts) to the UNet."""
        sd, exp_dim = loading.stable_diffusion_with_adapters(unet, vae, text_encoder, tokenizer, scheduler,
                                                             exp_adapter, ref_lora, device, dtype)
        return cls(sd, exp_dim, ref_lora is not None, is_test_model=is_test_model)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self._weights_probe.device

    @property
    def dtype(self) -> torch.dtype:
        return self._weights_probe.dtype

    @property
    def image_size(self) -> int:
        return self.unet.config.sample_size * self.vae_scale_factor

    @property
    def expression_kind(self) -> str | None:
        return EXPRESSION_KINDS.get(self.exp_dim) if self.exp_dim else None

    # ------------------------------------------------------------------ identity
    @torch.no_grad()
    def prepare_identity(self, id_embeddings, reference_images=None) -> IdentityContext:
        """ArcFace vector(s) (I, 512) and, for the Reference Adapter, FFHQ-aligned photo(s) -> context."""
        ids = torch.as_tensor(np.asarray(id_embeddings, dtype=np.float32)).reshape(-1, 512)
        # The official demo L2-normalises, so a raw insightface embedding gives the same result as a unit one.
        norms = torch.norm(ids, dim=1, keepdim=True)
        if not torch.isfinite(ids).all() or (norms == 0).any():
            raise ValueError("identity embeddings must be finite and non-zero 512-d vectors")
        ids = ids / norms
        with self._lock:
            prompt_embeds = self.id_encoder.encode(ids)
            uncond_embeds = self.id_encoder.encode_unconditional()
            reference = None
            if reference_images is not None and self.has_reference:
                images = np.asarray(reference_images)
                if images.ndim == 3:
                    images = images[None]
                if len(images) != len(ids):
                    raise ValueError(f"{len(images)} reference images for {len(ids)} identities")
                reference = self.reference_features(prompt_embeds, self.encode_reference(images))
        return IdentityContext(prompt_embeds, uncond_embeds, reference)

    def encode_reference(self, images: np.ndarray) -> torch.Tensor:
        """Aligned uint8 photos (I, H, W, 3) -> scaled VAE latents (the distribution's mean: deterministic)."""
        x = torch.tensor(np.asarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # a copy: the photo may be read-only
        size = self.image_size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = x.to(self.device, self.dtype)
        return self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor

    def reference_features(self, prompt_embeds: torch.Tensor, latents: torch.Tensor) -> dict[str, torch.Tensor]:
        """The reference UNet pass: the frozen Arc2Face UNet (no LoRA, no expression) at t=0, no noise.

        Scaled VAE latents of the aligned photo(s) and their prompt embeddings -> the hidden
        states feeding each self-attention layer, (I, N, C) per layer (IdentityContext.reference).
        """
        with self._lock:
            self.reference_passes += 1
            call = ReferenceCall(RECORD)
            try:
                self.use_base_weights()
                self.set_expression_scale(0.0)
                timestep = torch.zeros(latents.shape[0], device=self.device, dtype=torch.long)
                no_expression = torch.zeros(latents.shape[0], self.exp_dim or 1, device=self.device, dtype=self.dtype)
                self.unet(latents, timestep, encoder_hidden_states=prompt_embeds,
                          cross_attention_kwargs={"reference": call}, **self.expression_inputs(no_expression))
                return call.features
            finally:
                self.unet.enable_adapters()
                self._lora_state = None

    # ------------------------------------------------------------------ adapters' knobs
    def expression_inputs(self, expressions: torch.Tensor) -> dict:
        """UNet keyword arguments that feed (B, E) expression vectors to the Expression Adapter."""
        if self.exp_dim is None:
            return {}
        # (B, E) -> (B, 1 image, E): diffusers' multi-image IP-Adapter layout
        return {"added_cond_kwargs": {"image_embeds": [expressions[:, None, :]]}}

    def set_expression_scale(self, scale: float) -> None:
        """The Expression Adapter's scale in every cross-attention layer (0 = no expression)."""
        if self.exp_dim is None or scale == self._expression_scale:
            return
        for processor in self._expression_processors:
            processor.scale = [scale]
        self._expression_scale = scale

    def set_adapter_weights(self, ref_scale: float, lcm: bool, fused: bool = False) -> tuple:
        """Activate the LoRAs a frame needs: the Reference Adapter at its scale, the LCM-LoRA for the lcm sampler.

        `fused`: merged into the UNet's weights through peft (diffusers' fuse_lora), for as long as the state
        holds: no LoRA work in any UNet call. Unfused (training, which needs the LoRA layers' gradients) they
        run beside the base layers. Returns the LoRA state, which also keys the reference keys/values
        projected through them (fused or not, the same values within rounding).
        """
        state = (ref_scale if self.has_reference else 0.0, lcm and self.has_lcm)
        if not (self.has_reference or self.has_lcm) or (state, fused) == (self._lora_state, self._fuse_requested):
            return state
        self._fusion.unfuse()
        names, weights = [], []
        if state[0] > 0:
            names.append(REFERENCE_ADAPTER)
            weights.append(state[0])
        if state[1]:
            names.append(LCM_ADAPTER)
            weights.append(1.0)
        if names:
            self.unet.enable_adapters()
            self.unet.set_adapters(names, weights=weights)
            if fused:
                self._fusion.fuse(names)  # each at the weight set_adapters gave it
        else:
            self.unet.disable_adapters()
        self._lora_state, self._fuse_requested = state, fused
        return state

    def use_base_weights(self) -> None:
        """The UNet's own weights: every LoRA unfused and off (the next generate sets them again)."""
        with self._lock:
            self._fusion.unfuse()
            self.unet.disable_adapters()
            self._lora_state = None

    def load_lcm_lora(self, source: str | Path = LCM_LORA_HUB_ID) -> None:
        """The LCM-LoRA for SD 1.5 (hub id, folder or file), used by the `lcm` sampler."""
        with self._lock:
            self._fusion.unfuse()  # new LoRA layers go onto the base weights
            loading.load_lcm_lora(self.sd, source)
            self.has_lcm = True
            self._lora_state = None

    # ------------------------------------------------------------------ sampling
    def _noise_shape(self) -> tuple[int, int, int, int]:
        latent = self.unet.config.sample_size
        return (1, self.unet.config.in_channels, latent, latent)

    def noise_for(self, settings: GenerationSettings, batch: int, frame_indices=None) -> torch.Tensor:
        """The initial latents of a batch (see retarget.pipeline.noise)."""
        return seeded_noise.frame_noise(settings, self._noise_shape(), batch, frame_indices)

    def step_noise_generators(self, settings: GenerationSettings, batch: int, frame_indices=None) -> list[torch.Generator]:
        """The generators of the noise LCMScheduler adds between steps (see retarget.pipeline.noise)."""
        return seeded_noise.step_noise_generators(settings, self._noise_shape(), batch, frame_indices)

    @torch.no_grad()
    def generate(self, context: IdentityContext, expressions, settings: GenerationSettings | None = None,
                 noise: torch.Tensor | None = None, frame_indices=None, progress: bool = False, output: str = "numpy"):
        """A batch of expression vectors (B, E) -> B images, one UNet call per step for the whole batch.

        Returns uint8 (B, H, W, 3) for output="numpy", or float images in [0, 1] (B, 3, H, W)
        for output="pt".
        """
        settings = settings or GenerationSettings()
        settings.validate()
        expressions = torch.as_tensor(np.asarray(expressions, dtype=np.float32))
        if expressions.ndim == 1:
            expressions = expressions[None]
        batch = expressions.shape[0]
        if self.exp_dim is not None and expressions.shape[1] != self.exp_dim:
            raise RetargetError(
                f"the Expression Adapter takes {self.exp_dim} values ({self.expression_kind}); got {expressions.shape[1]}"
            )
        if context.num_identities not in (1, batch):
            raise ValueError(f"{context.num_identities} identities for a batch of {batch}")
        if settings.sampler == "lcm" and not self.has_lcm:
            raise RetargetError(f"the lcm sampler needs the LCM-LoRA: pass --lcm-lora {LCM_LORA_HUB_ID} (or a local copy)")
        if noise is None:
            noise = self.noise_for(settings, batch, frame_indices)
        step_kwargs = {"generator": self.step_noise_generators(settings, batch, frame_indices)} if settings.sampler == "lcm" else {}
        with self._lock:  # the scheduler, the adapters' scales and the fused weights are shared state
            scheduler = self._schedulers.get(settings, self.device)
            latents = noise.to(self.device, torch.float32) * scheduler.init_noise_sigma
            conditioning = self.conditioning(context, expressions, settings, fused=self.fuse_loras)
            timesteps = scheduler.timesteps
            if progress:
                from tqdm.auto import tqdm

                timesteps = tqdm(timesteps, desc="sampling", leave=False)
            for t in timesteps:
                uncond_eps, cond_eps = self.noise_prediction(scheduler.scale_model_input(latents, t), t, conditioning)
                eps = cond_eps if uncond_eps is None else uncond_eps + settings.cfg * (cond_eps - uncond_eps)
                latents = scheduler.step(eps, t, latents, **step_kwargs).prev_sample
            return self.decode(latents, output)

    def conditioning(self, context: IdentityContext, expressions: torch.Tensor, settings: GenerationSettings,
                     fused: bool = False) -> dict:
        """Text and expression inputs for a batch, in diffusers' CFG layout [uncond; cond], and the adapters' knobs set.

        `fused`: the LoRAs merged into the weights (inference); unfused for callers that need their gradients.
        """
        batch = expressions.shape[0]
        guided = settings.cfg > 1.0
        use_reference = settings.reference_active and self.has_reference and context.reference is not None
        cond = context.prompt_embeds.expand(batch, -1, -1) if context.num_identities == 1 else context.prompt_embeds
        expressions = expressions.to(self.device, self.dtype)
        if guided:
            text = torch.cat([context.uncond_embeds.expand(batch, -1, -1), cond])
            # The unconditional branch sees a zero expression through the same MLP.
            exp_batch = torch.cat([torch.zeros_like(expressions), expressions])
        else:
            text, exp_batch = cond, expressions
        self.set_expression_scale(settings.exp_scale)
        lora_state = self.set_adapter_weights(settings.ref_scale if use_reference else 0.0, settings.sampler == "lcm", fused)
        reference_call = None
        if use_reference:
            reference_call = ReferenceCall(ATTEND, context.reference, cond_start=batch if guided else 0)
        return {
            "text": text,
            "extra": self.expression_inputs(exp_batch),
            "guided": guided,
            "reference_call": reference_call,
            "context": context,
            "lora_state": lora_state,
        }

    def _reference_projections(self, context: IdentityContext, lora_state: tuple):
        """The reference tokens' keys/values through the LoRAs as set now, projected once per identity and LoRA state."""
        if lora_state not in context.projections:
            context.projections[lora_state] = project_reference(self.unet, context.reference)
        return context.projections[lora_state]

    def noise_prediction(self, latents: torch.Tensor, t, conditioning: dict, unet=None):
        """One UNet call for the whole batch (both CFG halves); returns (uncond eps or None, cond eps).

        `t` is one timestep, or one per row (training); `unet` replaces self.unet for this call
        (a trainer passes its distributed wrapper of the same module so that gradients are synchronised).
        """
        guided = conditioning["guided"]
        if guided and torch.is_tensor(t) and t.ndim == 1:
            t = torch.cat([t, t])  # per-row timesteps for both halves
        reference_call = conditioning["reference_call"]
        if reference_call is not None and not torch.is_grad_enabled():
            # Inference: the cached keys/values. While gradients flow (training) the processors project
            # the reference in the call, through the LoRA being trained.
            reference_call = replace(
                reference_call, projections=self._reference_projections(conditioning["context"], conditioning["lora_state"]))
        attention_kwargs = {"reference": reference_call} if reference_call is not None else None
        model_input = torch.cat([latents, latents]) if guided else latents
        unet = self.unet if unet is None else unet
        eps = unet(model_input.to(self.dtype), t, encoder_hidden_states=conditioning["text"],
                   cross_attention_kwargs=attention_kwargs, **conditioning["extra"]).sample
        eps = eps.float()
        if guided:
            uncond_eps, cond_eps = eps.chunk(2)
            return uncond_eps, cond_eps
        return None, eps

    # ------------------------------------------------------------------ speed options
    def enable_channels_last(self) -> None:
        """NHWC memory layout for the convolution-heavy UNet and VAE (faster on GPUs; same results)."""
        self.unet.to(memory_format=torch.channels_last)
        self.vae.to(memory_format=torch.channels_last)

    def enable_compile(self, backend: str | None = None) -> None:
        """torch.compile the UNet in place; on CUDA with CUDA graphs ("reduce-overhead"). First calls are slow.

        `backend` (e.g. "eager": graph capture without code generation) is for checks that must stay quick.
        """
        if backend is not None:
            self.unet.compile(backend=backend, dynamic=False)
            return
        mode = "reduce-overhead" if self.device.type == "cuda" else "default"
        self.unet.compile(mode=mode, dynamic=False)

    def use_attention(self, name: str) -> None:
        """Every UNet call on this scaled-dot-product-attention kernel (retarget.pipeline.attention; auto: PyTorch picks)."""
        hooks = restrict_attention(self.unet, name, self.device, self.dtype)
        if self._attention_hooks is not None:
            self._attention_hooks.remove()
        self.attention, self._attention_hooks = name, hooks

    def use_tiny_vae(self, source: str | Path) -> None:
        """Decode with TAESD (`madebyollin/taesd` or a local folder): much faster, slightly less detail.

        The reference photo is still encoded with the full VAE, as the Reference Adapter was trained.
        """
        from diffusers import AutoencoderTiny

        try:
            tiny = AutoencoderTiny.from_pretrained(str(source), torch_dtype=self.dtype)
        except (OSError, ValueError) as err:
            raise MissingWeightsError(f"cannot load the tiny VAE from {source}: {first_line(err, 160)}") from None
        self.tiny_vae = tiny.to(self.device).eval().requires_grad_(False)

    def decode(self, latents: torch.Tensor, output: str = "numpy"):
        """Latents -> images, all frames of the batch in one decoder call."""
        if self.tiny_vae is not None:
            decoder, scaling = self.tiny_vae, self.tiny_vae.config.scaling_factor
        else:
            decoder, scaling = self.vae, self.vae.config.scaling_factor
        images = decoder.decode((latents / scaling).to(self.dtype)).sample
        check_finite(images, self)  # a broken model file must not become black frames
        images = (images.float() / 2 + 0.5).clamp(0, 1)
        if output == "pt":
            return images
        return (images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
