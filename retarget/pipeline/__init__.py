"""The generator: an identity context plus a batch of expression vectors -> images.

Arc2Face UNet + Expression Adapter (diffusers' IP-Adapter machinery, FaceID-style projection)
+ Reference Adapter (LoRA on self-attention through peft, reference tokens through our
attention processors), sampled with DPM-Solver++ and classifier-free guidance.

- generator.py: RetargetPipeline (from_files, prepare_identity, generate, and the reference pass,
  conditioning and noise prediction that training and benchmarks call)
- context.py: IdentityContext, everything per identity
- loading.py: model files -> diffusers components with the adapter files attached
- noise.py: seeded initial and LCM step noise
- fusion.py: the LoRAs fused into the UNet's weights for generation, base weights restored exactly
- schedulers.py: one sampler per settings state, reused
- devices.py: --device / --dtype
"""

from retarget.pipeline.context import IdentityContext
from retarget.pipeline.devices import default_dtype, pick_device, pick_dtype
from retarget.pipeline.generator import RetargetPipeline
from retarget.pipeline.loading import LCM_ADAPTER, LCM_LORA_HUB_ID, REFERENCE_ADAPTER
from retarget.pipeline.noise import initial_noise

__all__ = [
    "IdentityContext", "RetargetPipeline", "pick_device", "pick_dtype", "default_dtype", "initial_noise",
    "LCM_ADAPTER", "LCM_LORA_HUB_ID", "REFERENCE_ADAPTER",
]
