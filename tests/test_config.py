"""retarget.config: knob fields -> command-line options, validation, saved settings, and a knob (--crf) end to end."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import ClassVar

import pytest

from retarget.cli import main
from retarget.cli.render import headless_parser
from retarget.config import (
    HEADLESS_KNOBS, GenerationSettings, LiveOptions, MappingSettings, ModelOptions, PresetChoice, RenderOptions, VideoOptions,
    knob, knob_fields,
)
from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.store import app_fields, read_value, write_value
from retarget.errors import RetargetError
from tests.conftest import cut_clip

# `retarget --help`'s flags before the options were generated from the fields (git 8701f79); --crf is new.
FLAGS_BEFORE = {
    "-h", "--help", "--headless", "--identity", "--driver", "--out", "--models", "--exp-adapter", "--ref-lora", "--landmarker",
    "--smirk", "--steps", "--cfg", "--ref-scale", "--exp-scale", "--no-reference", "--seed", "--device", "--dtype", "--preset",
    "--lcm-lora", "--compile", "--channels-last", "--tiny-vae", "--min-change", "--batch-size", "--resume", "--side-by-side",
    "--per-frame-noise", "--no-smoothing", "--smoothing-cutoff", "--smoothing-beta", "--relative", "--neutral-frame",
    "--intensity", "--gain", "--mirror",
}
# Hand-written file/face options added since (issue 16): inputs, not knobs.
HAND_WRITTEN_SINCE = {"--expression", "--identity-face", "--driver-face"}
# Knobs added since: --fps (issue 24: the output rate of blendshape CSV drivers), the expression bridge (issue 20),
# a time range of the driver (issue 21).
KNOBS_SINCE = {"--fps", "--bridge", "--expression-source", "--start", "--end"}
# A model knob added as one ModelOptions field (issue 28): the SDPA kernel of the UNet's attention.
KNOBS_SINCE |= {"--attention"}
# Knobs added since (issue 27): marking outputs as AI-generated (ProvenanceOptions).
PROVENANCE_FLAGS = {"--no-provenance", "--c2pa-key", "--c2pa-cert"}


class FakeStore:
    """QSettings' value/setValue/contains over a dict; values come back as strings, as from an ini file."""

    def __init__(self, values: dict | None = None):
        self.values = dict(values or {})

    def value(self, key, default=None):
        return self.values.get(key, default)

    def setValue(self, key, value):
        self.values[key] = str(value).lower() if isinstance(value, bool) else str(value)

    def contains(self, key):
        return key in self.values


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


# ---------------------------------------------------------------------------------- fields -> parser
def test_the_command_line_has_the_same_flags_as_before_plus_crf():
    assert set(_actions(headless_parser())) == (FLAGS_BEFORE | HAND_WRITTEN_SINCE | KNOBS_SINCE | PROVENANCE_FLAGS
                                                | {"--crf", "--frame", "--colour-match"})


def test_every_flagged_knob_is_an_option_with_its_help_and_default():
    actions = _actions(headless_parser())
    for cls in HEADLESS_KNOBS:
        for field in knob_fields(cls):
            if field.knob.flag is None:
                continue
            action = actions[field.knob.flag]
            assert action.dest == field.name and action.help == field.knob.help
            if field.knob.parse is None:
                assert action.default == field.default, field.name


def test_no_options_give_the_dataclass_defaults_and_flags_mean_what_they_did():
    args = headless_parser().parse_args([])
    for cls in (ModelOptions, GenerationSettings, MappingSettings, VideoOptions, LiveOptions, PresetChoice):
        assert from_args(cls, args) == cls()
    args = headless_parser().parse_args(["--no-reference", "--no-smoothing", "--relative", "--gain", "mouth=1.5", "--gain", "jaw=0",
                                         "--steps", "7", "--preset", "fast", "--crf", "30", "--side-by-side", "s.mp4"])
    settings = from_args(PresetChoice, args).apply(from_args(GenerationSettings, args))
    assert (settings.use_reference, settings.steps, settings.cfg) == (False, 6, 2.0)  # the preset overrides --steps
    mapping = from_args(MappingSettings, args)
    assert not mapping.smoothing and mapping.relative and mapping.gains == {"mouth": 1.5, "jaw": 0.0}
    render = from_args(RenderOptions, args)
    assert str(render.side_by_side) == "s.mp4" and render.video == from_args(VideoOptions, args) == VideoOptions(crf=30)


def test_a_new_knob_needs_only_its_field():
    @dataclass
    class Example:
        SECTION: ClassVar[str] = "example"
        TITLE: ClassVar[str] = "Example"
        level: int = knob(3, flag="--level", low=1, high=9, help="how much (default 3)", label="Level")
        on: bool = knob(True, flag="--no-on", group="extra", help="switch it off", label="On")

    parser = argparse.ArgumentParser()
    parser.add_argument("--hand-written")  # the parser stays open to hand-written options
    add_knob_options(parser, Example)
    args = parser.parse_args(["--level", "5", "--no-on", "--hand-written", "x"])
    assert from_args(Example, args) == Example(level=5, on=False) and args.hand_written == "x"
    assert " ".join(parser.format_help().split()).count("--level LEVEL how much (default 3) extra: --no-on switch it off") == 1
    with pytest.raises(RetargetError, match=r"^--level must be at most 9 \(got 10\)$"):
        from retarget.config import validate_knobs

        validate_knobs(Example(level=10))
    store = FakeStore()
    for field in app_fields(Example):
        write_value(store, field, getattr(Example(level=7, on=False), field.name))
    assert store.values == {"example/level": "7", "example/on": "false"}
    assert [read_value(store, f, None) for f in app_fields(Example)] == [7, False]


# ---------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("make, message", [
    (lambda: GenerationSettings(steps=0), "--steps must be at least 1 (got 0)"),
    (lambda: GenerationSettings(steps=1001), "--steps must be at most 1000 (got 1001)"),
    (lambda: GenerationSettings(cfg=math.nan), "--cfg must be a finite number (got nan)"),
    (lambda: GenerationSettings(cfg=0.5), "--cfg must be at least 1 (got 0.5)"),
    (lambda: GenerationSettings(ref_scale=math.inf), "--ref-scale must be a finite number (got inf)"),
    (lambda: GenerationSettings(seed=-1), "--seed must be a whole number from 0 to 9223372036854775807 (2^63 - 1; got -1)"),
    (lambda: GenerationSettings(sampler="euler"), "unknown sampler 'euler'; choose from dpmsolver++, lcm"),
    (lambda: MappingSettings(min_cutoff=0.0), "--smoothing-cutoff must be more than 0 (got 0.0)"),
    (lambda: MappingSettings(intensity=-1.0), "--intensity must be at least 0 (got -1.0)"),
    (lambda: MappingSettings(gains={"mouth": math.nan}), "--gain mouth must be a finite number (got nan)"),
    (lambda: MappingSettings(calibration_window=-1), "calibration_window must be 0 or more (got -1)"),
    (lambda: RenderOptions(batch_size=0), "--batch-size must be at least 1 (got 0)"),
    (lambda: RenderOptions(neutral_frame=-1), "--neutral-frame must be 0 or more (got -1)"),
    (lambda: VideoOptions(crf=52), "--crf must be at most 51 (got 52)"),
    (lambda: VideoOptions(crf=2.5), "--crf must be a whole number (got 2.5)"),
    (lambda: LiveOptions(min_change=math.nan), "--min-change must be a finite number (got nan)"),
])
def test_validation_messages_name_the_flag(make, message):
    with pytest.raises(RetargetError) as err:
        make().validate()
    assert str(err.value) == message


def test_unknown_gain_and_bad_gain_syntax():
    with pytest.raises(RetargetError, match="unknown gain 'lips'"):
        MappingSettings(gains={"lips": 1.0}).validate()
    args = headless_parser().parse_args(["--gain", "mouth"])
    with pytest.raises(RetargetError, match=r"^--gain mouth: expected NAME=VALUE, e.g. --gain mouth=1.5$"):
        from_args(MappingSettings, args)


def test_a_bad_crf_is_one_line_before_any_model_loads(tmp_path, capsys):
    photo = tmp_path / "p.png"
    photo.write_bytes(b"not read: the options are checked first")
    code = main(["--headless", "--models", str(tmp_path / "no-models"), "--identity", str(photo), "--driver", str(photo),
                 "--out", str(tmp_path / "o.png"), "--crf", "60"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["retarget: error: --crf must be at most 51 (got 60)"]


# ---------------------------------------------------------------------------------- saved settings
def test_saved_settings_keys_come_from_the_fields():
    keys = {f.store_key for f in app_fields(PresetChoice, GenerationSettings, MappingSettings, ModelOptions, VideoOptions)}
    # today's keys (device moved to model/device, read from `device` too) and the new video/crf
    assert keys == {"gen/preset", "gen/steps", "gen/cfg", "gen/use_reference", "gen/ref_scale", "gen/exp_scale", "gen/seed",
                    "map/gain_{}", "map/smoothing", "map/relative", "map/mirror", "map/expression_source", "model/device",
                    "video/crf"}


def test_old_keys_are_read_while_the_new_one_is_absent_and_bad_values_keep_the_fallback():
    device = next(f for f in knob_fields(ModelOptions) if f.name == "device")
    assert read_value(FakeStore({"device": "cpu"}), device, "auto") == "cpu"
    assert read_value(FakeStore({"device": "cpu", "model/device": "cuda"}), device, "auto") == "cuda"
    steps = next(f for f in knob_fields(GenerationSettings) if f.name == "steps")
    assert read_value(FakeStore({"gen/steps": "7"}), steps, 25) == 7
    for bad in ("abc", "0", "2.5", "99999"):
        assert read_value(FakeStore({"gen/steps": bad}), steps, 25) == 25
    gains = next(f for f in knob_fields(MappingSettings) if f.name == "gains")
    assert read_value(FakeStore({"map/gain_jaw": "0.5", "map/gain_eyes": "nan"}), gains, {"jaw": 1.0, "eyes": 1.0}) == \
        {"jaw": 0.5, "eyes": 1.0}


# ---------------------------------------------------------------------------------- trainers
def test_trainers_take_the_shared_knobs():
    from training import distill, train_expression

    expression = _actions(train_expression.build_parser())
    assert expression["--models"].help == next(f for f in knob_fields(ModelOptions) if f.name == "models").knob.help
    args = distill.build_parser().parse_args(["--data", "d", "--out", "o", "--no-reference", "--ref-scale", "0.5"])
    assert args.use_reference is False and args.ref_scale == 0.5 and args.exp_adapter is None


def test_trainers_check_the_shared_knobs(tmp_path):
    from training import distill
    from training.options import check_args

    args = distill.build_parser().parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--ref-scale", "nan"])
    with pytest.raises(RetargetError, match=r"^--ref-scale must be a finite number"):
        check_args(args)


# ---------------------------------------------------------------------------------- the CRF knob, end to end
def _x264_settings(path) -> str:
    """The encoder's own record of its settings: x264 writes them into the stream (an SEI message)."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    return data[start:data.index(b"\x00", start)].decode("ascii", "replace")


def test_crf_reaches_the_encoder_of_the_output_and_the_side_by_side_video(tmp_path, tiny_models_dir, shared_dir, landmarker_path):
    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "clip.mp4", 2)
    common = ["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "1",
              "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"), "--driver", str(clip)]
    assert main([*common, "--out", str(tmp_path / "default.mp4")]) == 0
    assert main([*common, "--out", str(tmp_path / "crf40.mp4"), "--side-by-side", str(tmp_path / "both.mp4"), "--crf", "40"]) == 0
    assert " crf=18.0 " in _x264_settings(tmp_path / "default.mp4")  # the default is the sink's old literal 18
    assert " crf=40.0 " in _x264_settings(tmp_path / "crf40.mp4")
    assert " crf=40.0 " in _x264_settings(tmp_path / "both.mp4")


def test_crf_reaches_a_live_recording(tmp_path):
    import numpy as np

    from retarget.media.video_sink import TimedVideoSink

    sink = TimedVideoSink(tmp_path / "rec.mp4", (64, 64), video=VideoOptions(crf=30))
    for t in range(3):
        sink.write(np.full((64, 64, 3), 40 * t, np.uint8), timestamp=t / 10)
    sink.close(end_time=0.3)
    assert " crf=30.0 " in _x264_settings(tmp_path / "rec.mp4")
