"""Generation settings: the paper's defaults, presets that change only the sampling knobs, one-line range checks."""

from __future__ import annotations

import math

import pytest

from retarget.errors import RetargetError
from retarget.config.generation import GenerationSettings, MAX_SEED, MAX_STEPS, PRESETS, preset_settings
from retarget.config.knobs import check_number


def test_defaults_are_the_papers_and_valid():
    settings = GenerationSettings()
    settings.validate()
    assert (settings.steps, settings.cfg, settings.ref_scale, settings.exp_scale) == (25, 3.0, 0.8, 1.0)
    assert settings.sampler == "dpmsolver++" and settings.reference_active


def test_the_reference_is_off_when_disabled_or_scaled_to_zero():
    assert not GenerationSettings(use_reference=False).reference_active
    assert not GenerationSettings(ref_scale=0.0).reference_active


def test_a_preset_replaces_only_steps_guidance_and_sampler():
    base = GenerationSettings(seed=9, ref_scale=0.5, exp_scale=1.3, per_frame_noise=True)
    for name, preset in PRESETS.items():
        settings = preset_settings(name, base)
        settings.validate()
        assert (settings.steps, settings.cfg, settings.sampler) == (preset.steps, preset.cfg, preset.sampler)
        assert (settings.seed, settings.ref_scale, settings.exp_scale, settings.per_frame_noise) == (9, 0.5, 1.3, True)
    assert base.steps == 25  # the base is not changed


@pytest.mark.parametrize("changes, flag", [
    ({"steps": 0}, "--steps"), ({"steps": MAX_STEPS + 1}, "--steps"), ({"steps": 2.5}, "--steps"),
    ({"cfg": 0.5}, "--cfg"), ({"cfg": math.nan}, "--cfg"), ({"ref_scale": -0.1}, "--ref-scale"),
    ({"exp_scale": math.inf}, "--exp-scale"), ({"seed": -1}, "--seed"), ({"seed": MAX_SEED + 1}, "--seed"),
    ({"sampler": "euler"}, "sampler"),
])
def test_out_of_range_settings_name_their_option_in_one_line(changes, flag):
    with pytest.raises(RetargetError) as info:
        GenerationSettings(**changes).validate()
    assert flag in str(info.value) and "\n" not in str(info.value)


def test_check_number_bounds_and_what_is_not_a_number():
    check_number("--x", "0.5", low=0.0, high=1.0)  # numeric text is a number
    check_number("--x", 1.0, low=0.0, high=1.0)
    with pytest.raises(RetargetError, match="more than 0"):
        check_number("--x", 0.0, low=0.0, low_open=True)
    with pytest.raises(RetargetError, match="at most 1"):
        check_number("--x", 1.5, high=1.0)
    with pytest.raises(RetargetError, match="must be a number"):
        check_number("--x", "fast")
    with pytest.raises(RetargetError, match="finite"):
        check_number("--x", float("nan"))
