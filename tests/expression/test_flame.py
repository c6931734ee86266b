"""Expression controls with the published FLAME-55 adapter: relative, intensity, mirror, gains, smoothing, stills."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import BadInputError, RetargetError
from retarget.expression.flame import FlameMapper, clamp_to_smirk_ranges, control_support, flame_gains
from retarget.config.mapping import MappingSettings, REGIONS
from retarget.expression.mapping import ExpressionMapper, OneEuroFilter
from tests.conftest import needs_shared


def flame_vector(seed: int) -> np.ndarray:
    """55 values inside SMIRK's ranges (expression free, eyelids 0..1, jaw open >= 0, sideways +-0.2)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 0.5, 50), rng.uniform(0.3, 0.6, 2), [rng.uniform(0.05, 0.1)],
                           rng.uniform(-0.05, 0.05, 2)]).astype(np.float32)


IDENTITY, NEUTRAL, FRAME = flame_vector(0), flame_vector(1), flame_vector(2)


def mapped(frame=FRAME, **settings) -> np.ndarray:
    mapper = FlameMapper(MappingSettings(smoothing=False, **settings), identity_flame=IDENTITY)
    mapper.set_neutral(NEUTRAL)
    return mapper(frame, 0.0).astype(np.float64)


def test_relative_adds_the_drivers_change_to_the_identitys_own_values():
    change = FRAME.astype(np.float64) - NEUTRAL
    assert np.allclose(mapped(relative=True), IDENTITY + change, atol=1e-6)
    # Not relative: the driver's own values go through unchanged.
    assert np.allclose(mapped(), FRAME, atol=1e-7)


def test_relative_before_a_neutral_shows_the_identity_then_calibrates_on_the_first_frames():
    mapper = FlameMapper(MappingSettings(smoothing=False, relative=True, calibration_window=3), identity_flame=IDENTITY)
    frames = [flame_vector(10 + i) for i in range(3)]
    outputs = [mapper(f, i / 25) for i, f in enumerate(frames)]
    assert np.allclose(outputs[0], IDENTITY) and np.allclose(outputs[1], IDENTITY)
    assert np.allclose(mapper.driver_neutral, np.median(np.stack(frames), axis=0), atol=1e-7)
    with pytest.raises(RetargetError, match="identity photo's own FLAME"):
        FlameMapper(MappingSettings(relative=True), identity_flame=None)


def test_a_non_finite_flame_vector_is_a_missing_value_held_and_counted():
    mapper = FlameMapper(MappingSettings(smoothing=True))
    first = mapper(FRAME, 0.0)
    broken = FRAME.copy()
    broken[3] = np.nan
    assert np.array_equal(mapper(broken, 0.04), first)  # the last output, not NaN
    assert mapper.frames_without_face == 1
    assert np.isfinite(mapper(flame_vector(5), 0.08)).all()  # the filter state never saw the NaN


def test_intensity_scales_the_change():
    change = FRAME.astype(np.float64) - NEUTRAL
    for k in (0.0, 0.5, 1.5):
        out = mapped(relative=True, intensity=k)
        free = slice(0, 50)  # the expression coefficients have no clamp
        assert np.allclose(out[free], IDENTITY[free] + k * change[free], atol=1e-6)
    assert np.allclose(mapped(relative=True, intensity=0.0), IDENTITY, atol=1e-6)
    assert np.allclose(mapped(intensity=0.5)[:50], 0.5 * FRAME[:50], atol=1e-6)


@pytest.mark.parametrize("gain, indices", [("eyes", range(50, 52)), ("jaw", range(52, 55)), ("expression", range(0, 50))])
def test_region_gains_act_on_their_flame_values_only(gain, indices):
    base, scaled = mapped(relative=True), mapped(relative=True, gains={gain: 0.5})
    change = FRAME.astype(np.float64) - NEUTRAL
    inside = np.array(list(indices))
    outside = np.setdiff1d(np.arange(55), inside)
    assert np.allclose(scaled[outside], base[outside])
    assert np.allclose(scaled[inside], clamp_to_smirk_ranges(IDENTITY + 0.5 * change)[inside], atol=1e-6)
    assert not np.allclose(scaled[inside], base[inside])
    zero = mapped(relative=True, gains={gain: 0.0})
    assert np.allclose(zero[inside], IDENTITY[inside], atol=1e-6)  # no change from the identity's own values


def test_outputs_stay_in_smirk_ranges():
    out = mapped(relative=True, intensity=40.0)
    assert (out[50:52] >= 0).all() and (out[50:52] <= 1).all() and out[52] >= 0 and (np.abs(out[53:55]) <= 0.2 + 1e-7).all()


@pytest.mark.parametrize("gain", ["brows", "mouth", "cheeks", "nose", "jawOpen", "mouthSmileLeft"])
def test_gains_flame_cannot_apply_are_refused_with_a_reason(gain):
    with pytest.raises(RetargetError) as caught:
        flame_gains(MappingSettings(gains={gain: 1.5}))
    message = str(caught.value)
    assert gain in message and "global" in message and "\n" not in message
    flame_gains(MappingSettings(gains={gain: 1.0}))  # a gain of 1 changes nothing: accepted


def test_smoothing_filters_the_mapped_flame_vector():
    settings = MappingSettings(relative=True, min_cutoff=1.0, beta=0.3)
    mapper = FlameMapper(settings, identity_flame=IDENTITY)
    mapper.set_neutral(NEUTRAL)
    reference = OneEuroFilter(1.0, 0.3)
    plain = FlameMapper(MappingSettings(relative=True, smoothing=False), identity_flame=IDENTITY)
    plain.set_neutral(NEUTRAL)
    for i, frame in enumerate([FRAME, flame_vector(3), flame_vector(4)]):
        t = i / 25
        expected = reference(plain(frame, t), t)
        got = mapper(frame, t)
        assert np.allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, plain(flame_vector(4), t))  # smoothing really changed the vector


def test_control_support_says_what_applies_and_why_not():
    flame = control_support("flame55")
    for name in ("relative", "set_neutral", "intensity", "mirror", "smoothing", "gain.eyes", "gain.jaw", "gain.expression"):
        assert flame[name] is None
    for region in ("brows", "mouth", "cheeks", "nose"):
        assert "global" in flame[f"gain.{region}"]
    blend = control_support("blendshapes52")
    assert all(blend[f"gain.{r}"] is None for r in REGIONS) and blend["gain.expression"]
    with pytest.raises(RetargetError, match="only the FLAME-55"):
        ExpressionMapper(MappingSettings(gains={"expression": 2.0}))


# ---------------------------------------------------------------- with the landmarker and the random SMIRK checkpoint

@pytest.fixture(scope="module")
def retargeter(tiny_models_dir, landmarker_path):
    from retarget.weights.assets import resolve_models
    from retarget.config.models import ModelOptions
    from retarget.session.retargeter import Retargeter

    with Retargeter(resolve_models(str(tiny_models_dir)), ModelOptions(device="cpu", landmarker=landmarker_path)) as r:
        assert r.pipeline.expression_kind == "flame55"
        yield r


@pytest.fixture(scope="module")
def photos(shared_dir):
    from retarget.face.image_io import load_image

    return {name: load_image(shared_dir / "media" / name)
            for name in ("identity_hepburn_small.png", "expression_exp1_rgba.png", "expression_exp3_rgba.png")}


def drive(retargeter, image, **settings):
    from retarget.media.sources import Frame

    with retargeter.driver_analyzer(MappingSettings(**settings)) as analyzer:
        return analyzer(Frame(0, 0.0, image))


@needs_shared
def test_identity_flame_is_smirk_on_the_identity_photo(retargeter, photos):
    image = photos["identity_hepburn_small.png"]
    context = retargeter.identity_from_image(image)
    landmarks = retargeter.observe(image, "identity").landmarks
    assert np.array_equal(context.flame, retargeter.smirk.encode(image, landmarks))
    assert retargeter.control_support()["gain.mouth"] is not None


@needs_shared
def test_mirror_flips_the_driver_image_before_smirk(retargeter, photos):
    from retarget.face.smirk import smirk_crop

    image = photos["expression_exp3_rgba.png"]
    landmarks = retargeter.observe(image, "driver").landmarks
    with retargeter.driver_analyzer(MappingSettings(mirror=True, smoothing=False)) as analyzer:
        mirrored = analyzer.raw_flame(image, landmarks)
        frame = drive(retargeter, image, mirror=True, smoothing=False)
    # SMIRK sees the mirror image of the face: its input is the left-right flip of the unmirrored crop.
    flipped_crop = smirk_crop(image, landmarks)[:, ::-1]
    expected = retargeter.smirk.encode_batch(flipped_crop[None])[0]
    plain = retargeter.smirk.encode(image, landmarks)
    scale = np.abs(plain - expected).max()
    assert scale > 0.05  # the face is not symmetric, so mirroring matters
    assert np.abs(mirrored - expected).max() < 0.05 * scale
    # What is fed to the adapter for a mirrored frame is that mirrored FLAME (no other control set).
    assert np.array_equal(frame.expression, frame.raw_flame)
    assert np.abs(frame.raw_flame - expected).max() < np.abs(frame.raw_flame - plain).max()


@needs_shared
def test_each_control_changes_the_vector_fed_to_the_adapter(retargeter, photos):
    image = photos["expression_exp1_rgba.png"]
    retargeter.identity_from_image(photos["identity_hepburn_small.png"])
    raw = drive(retargeter, image, smoothing=False).raw_flame.astype(np.float64)
    half = drive(retargeter, image, smoothing=False, intensity=0.5).expression
    assert np.allclose(half[:50], 0.5 * raw[:50], atol=1e-6)
    eyes = drive(retargeter, image, smoothing=False, gains={"eyes": 0.0}).expression
    assert np.allclose(eyes[50:52], 0.0) and np.allclose(eyes[:50], raw[:50], atol=1e-6)
    # Relative with a neutral frame: identity's FLAME + (frame - neutral).
    neutral = retargeter.driver_neutral(photos["expression_exp3_rgba.png"], "neutral")
    from retarget.media.sources import Frame

    with retargeter.driver_analyzer(MappingSettings(relative=True, smoothing=False)) as analyzer:
        analyzer.set_neutral_from(neutral)
        relative = analyzer(Frame(0, 0.0, image)).expression
    expected = retargeter.identity_flame + raw - neutral
    assert np.allclose(relative[:50], expected[:50], atol=1e-5)
    with pytest.raises(RetargetError, match="brows"):
        retargeter.driver_analyzer(MappingSettings(gains={"brows": 2.0}))


@needs_shared
def test_set_neutral_from_a_frames_raw_blendshapes_finds_its_flame(retargeter, photos):
    """The app's Set neutral hands back a frame's raw blendshapes, also to an analyzer made later."""
    from retarget.media.sources import Frame

    image = photos["expression_exp3_rgba.png"]
    with retargeter.driver_analyzer(MappingSettings(relative=True, smoothing=False)) as first:
        seen = first(Frame(0, 0.0, image))
    with retargeter.driver_analyzer(MappingSettings(relative=True, smoothing=False)) as second:
        second.set_neutral_from(seen.raw_blendshapes)
        assert np.allclose(second.mapper.driver_neutral, seen.raw_flame)
        with pytest.raises(BadInputError, match="set neutral"):
            second.set_neutral_from(np.full(52, 0.123, np.float32))


@needs_shared
def test_stills_use_the_same_mapping_as_videos(retargeter, photos):
    image = photos["expression_exp1_rgba.png"]
    settings = MappingSettings(intensity=0.7, gains={"jaw": 0.0, "eyes": 1.3})
    still = retargeter.expression_from_image(image, mapping=settings)
    assert np.array_equal(still, drive(retargeter, image, intensity=0.7, gains={"jaw": 0.0, "eyes": 1.3}).expression)
    assert not np.allclose(still, retargeter.expression_from_image(image))
    mirrored = retargeter.expression_from_image(image, mapping=MappingSettings(mirror=True))
    assert not np.allclose(mirrored, retargeter.expression_from_image(image))
    with pytest.raises(BadInputError, match="neutral face"):
        retargeter.expression_from_image(image, mapping=MappingSettings(relative=True))


@needs_shared
def test_cli_refuses_a_gain_flame_cannot_apply(tmp_path, tiny_models_dir, shared_dir, landmarker_path, capsys):
    from retarget.cli import main

    media = shared_dir / "media"
    code = main(["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "1",
                 "--identity", str(media / "identity_hepburn_small.png"), "--driver", str(media / "expression_exp1_rgba.png"),
                 "--gain", "mouth=1.5", "--out", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and not (tmp_path / "o.png").exists()
    assert "mouth" in err[-1] and "global" in err[-1] and "Traceback" not in "\n".join(err)


@needs_shared
def test_set_mapping_on_a_flame_analyzer_keeps_smirk_and_applies_the_new_controls(retargeter, photos):
    from retarget.media.sources import Frame

    image = photos["expression_exp1_rgba.png"]
    with retargeter.driver_analyzer(MappingSettings(smoothing=False)) as analyzer:
        analyzer(Frame(0, 0.0, image))  # the stream's MediaPipe graph is running
        landmarker, smirk = analyzer._landmarker, analyzer.smirk
        assert landmarker is not None
        analyzer.set_mapping(MappingSettings(smoothing=False, intensity=0.5))
        second = analyzer(Frame(1, 0.04, image))
        half, raw = second.expression, second.raw_flame.astype(np.float64)
        assert analyzer._landmarker is landmarker and analyzer.smirk is smirk
        with pytest.raises(RetargetError, match="brows"):
            analyzer.set_mapping(MappingSettings(gains={"brows": 2.0}))
        assert analyzer.mapping.intensity == 0.5
    assert np.allclose(half[:50], 0.5 * raw[:50], atol=1e-5)
