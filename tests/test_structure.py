"""Structural checks of the engine's work: what runs per identity, per batch, per frame (CPU, tiny models)."""

from __future__ import annotations

import math
from unittest import mock

import pytest

from retarget.weights.assets import resolve_models
from retarget.engine import OfflineRenderer
from retarget.config.render import RenderOptions
from retarget.models.reference_attention import RECORD
from retarget.config.models import ModelOptions
from retarget.session.retargeter import Retargeter
from retarget.config.generation import GenerationSettings
from tests.conftest import cut_clip, needs_shared

pytestmark = needs_shared


@pytest.mark.parametrize("frames, batch", [(10, 4), (5, 1)])
def test_work_per_identity_batch_and_frame(tmp_path, blendshape_models_dir, shared_dir, landmarker_path, frames, batch):
    from diffusers import UNet2DConditionModel

    import retarget.engine.driving

    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "clip.mp4", frames)
    steps = 3
    calls = {"text": 0, "record": 0, "denoise": 0}
    with Retargeter(resolve_models(str(blendshape_models_dir)), ModelOptions(device="cpu", landmarker=landmarker_path)) as retargeter:
        pipe = retargeter.pipeline
        pipe.id_encoder.text_encoder.register_forward_pre_hook(lambda m, a: calls.__setitem__("text", calls["text"] + 1))

        def count_unet(module, args, kwargs):
            call = (kwargs.get("cross_attention_kwargs") or {}).get("reference")
            calls["record" if call is not None and call.mode == RECORD else "denoise"] += 1

        pipe.unet.register_forward_pre_hook(count_unet, with_kwargs=True)
        from retarget.face.image_io import load_image

        context = retargeter.identity_from_image(load_image(shared_dir / "media" / "identity_hepburn_small.png"))
        assert calls == {"text": 2, "record": 1, "denoise": 0}  # conditional + unconditional; one reference pass

        renderer = OfflineRenderer(pipe, context, lambda: retargeter.driver_analyzer(identity_neutral=context.blendshapes),
                                   GenerationSettings(steps=steps))
        from diffusers import AutoencoderKL
        from transformers import CLIPTextModel

        with mock.patch.object(retarget.engine.driving, "FaceLandmarker", wraps=retarget.engine.driving.FaceLandmarker) as landmarkers, \
                mock.patch.object(UNet2DConditionModel, "from_pretrained") as unet_loads, \
                mock.patch.object(AutoencoderKL, "from_pretrained") as vae_loads, \
                mock.patch.object(CLIPTextModel, "from_pretrained") as encoder_loads:
            summary = renderer.render(str(clip), tmp_path / "out.mp4", RenderOptions(batch_size=batch, progress=False))
        assert unet_loads.call_count == vae_loads.call_count == encoder_loads.call_count == 0  # no model loaded per frame
        assert summary.rendered == frames
        assert calls["text"] == 2 and calls["record"] == 1  # nothing per identity is redone per frame
        assert calls["denoise"] == math.ceil(frames / batch) * steps
        assert landmarkers.call_count == 1  # one tracker for the stream, not one per frame
