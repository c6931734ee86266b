"""ModelOptions travels as one object, flag -> Session -> loader, and a model knob is one field: --attention
(retarget.config.models) reaches the loaded pipeline's UNet calls with no plumbing of its own."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import retarget.session.retargeter
from retarget.cli import main
from retarget.cli.render import headless_parser
from retarget.config import GenerationSettings
from retarget.config.cli_options import from_args
from retarget.config.knobs import knob_fields
from retarget.config.models import ModelOptions
from retarget.config.store import read_value, write_value
from retarget.errors import BadInputError
from retarget.pipeline.attention import check_attention
from retarget.session import Session
from tests.conftest import needs_shared


class DictStore:
    """The QSettings calls the saved-settings readers use, in a dict."""

    def __init__(self):
        self.values = {}

    def value(self, key, default=None):
        return self.values.get(key, default)

    def setValue(self, key, value):
        self.values[key] = value

    def contains(self, key):
        return key in self.values


def _attention_field():
    return next(f for f in knob_fields(ModelOptions) if f.name == "attention")


def test_the_attention_knob_is_a_flag_and_a_saved_key():
    args = headless_parser().parse_args(["--attention", "math"])
    assert from_args(ModelOptions, args).attention == "math"
    assert from_args(ModelOptions, headless_parser().parse_args([])).attention == "auto"
    with pytest.raises(SystemExit):
        headless_parser().parse_args(["--attention", "fastest"])
    field = _attention_field()
    store = DictStore()
    write_value(store, field, "math")
    assert store.values == {"model/attention": "math"} and read_value(store, field, "auto") == "math"
    store.setValue("model/attention", "fastest")  # a hand-edited value outside the choices is ignored
    assert read_value(store, field, "auto") == "auto"


def test_a_kernel_this_device_lacks_is_refused_in_one_line():
    with pytest.raises(BadInputError) as err:
        check_attention("efficient", torch.device("cpu"), torch.float32)  # PyTorch has no CPU memory-efficient kernel
    assert "--attention efficient" in str(err.value) and "\n" not in str(err.value)
    check_attention("math", torch.device("cpu"), torch.float32)  # the reference kernel runs everywhere


@needs_shared
def test_the_parsed_options_reach_the_unet_calls_through_the_session(tiny_models_dir, landmarker_path, shared_dir):
    """Flag -> from_args -> Session.load_models(options) -> load_retargeter -> RetargetPipeline.use_attention."""
    args = headless_parser().parse_args(["--models", str(tiny_models_dir), "--landmarker", str(landmarker_path),
                                         "--device", "cpu", "--attention", "math"])
    options = from_args(ModelOptions, args)
    seen = []
    with Session() as session:
        session.load_models(options)
        pipeline = session.retargeter.pipeline
        assert pipeline.attention == "math" and session.model_options is options
        # A hook registered after the loader's sees the kernel choice PyTorch's attention calls will see.
        handle = pipeline.unet.register_forward_pre_hook(
            lambda module, inputs: seen.append((torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.math_sdp_enabled())))
        context = session.set_identity(shared_dir / "media" / "identity_hepburn_small.png")
        pipeline.generate(context, np.zeros((1, pipeline.exp_dim), np.float32), GenerationSettings(steps=2))
        handle.remove()
        assert seen and all(flags == (False, True) for flags in seen)  # every UNet call: math only
        assert torch.backends.cuda.flash_sdp_enabled()  # and PyTorch's own choice again outside them
        session.load_models(replace(options, attention="auto"))  # the same session, the kernel left to PyTorch
        assert session.retargeter.pipeline.attention == "auto" and not session.retargeter.pipeline.unet._forward_pre_hooks


@needs_shared
def test_the_command_line_flag_arrives_at_the_loaded_pipeline(tiny_models_dir, landmarker_path, shared_dir, tmp_path,
                                                              monkeypatch):
    loaded = []
    real_speed_up = retarget.session.retargeter.speed_up

    def recording_speed_up(pipe, options):
        real_speed_up(pipe, options)
        loaded.append((options.attention, pipe.attention))

    monkeypatch.setattr(retarget.session.retargeter, "speed_up", recording_speed_up)
    media = shared_dir / "media"
    out = tmp_path / "o.png"
    assert main(["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--device", "cpu",
                 "--steps", "2", "--attention", "math", "--identity", str(media / "identity_hepburn_small.png"),
                 "--driver", str(media / "expression_exp3_rgba.png"), "--out", str(out)]) == 0
    assert loaded == [("math", "math")] and out.is_file()


def test_the_flag_offers_exactly_the_kernels_the_loader_knows():
    """config names the choices without importing torch; they must be the loader's own."""
    from retarget.config.models import ATTENTION
    from retarget.pipeline.attention import ATTENTION_BACKENDS, AUTO

    assert ATTENTION == (AUTO, *ATTENTION_BACKENDS)
