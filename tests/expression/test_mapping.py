"""Expression mapping: One Euro smoothing, mirroring, relative calibration, gains, face-less frames."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import RetargetError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.config.mapping import MappingSettings, REGIONS
from retarget.expression.mapping import ExpressionMapper, OneEuroFilter

N = len(BLENDSHAPE_NAMES)
IDX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
FPS = 25.0


def vec(**values) -> np.ndarray:
    v = np.zeros(N, np.float32)
    for name, value in values.items():
        v[IDX[name]] = value
    return v


def raw(**kw) -> MappingSettings:
    """Settings with smoothing off, to look at one step at a time."""
    return MappingSettings(smoothing=False, **kw)


# ---------------------------------------------------------------- One Euro filter


def test_one_euro_reduces_jitter_on_a_still_signal():
    rng = np.random.default_rng(0)
    noisy = 0.5 + rng.normal(0, 0.05, (250, N))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    out = np.stack([f(x, i / FPS) for i, x in enumerate(noisy)])
    settled = out[50:]
    assert settled.std() < noisy[50:].std() / 3
    assert abs(settled.mean() - 0.5) < 0.01


def test_one_euro_follows_a_step():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.3)
    signal = [np.zeros(N)] * 25 + [np.ones(N)] * 50
    out = np.stack([f(x, i / FPS) for i, x in enumerate(signal)])
    assert np.all(out[:25] == 0)
    assert 0 < out[25, 0] < 1  # smoothed, not a jump
    assert np.all(np.diff(out[24:, 0]) >= 0)  # monotone, no overshoot
    assert out[-1, 0] > 0.99  # it arrives
    # A faster-opening filter (larger beta) gets there sooner.
    g = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    slow = np.stack([g(x, i / FPS) for i, x in enumerate(signal)])
    assert out[30, 0] > slow[30, 0]


def test_one_euro_first_sample_equal_timestamps_and_reset():
    f = OneEuroFilter()
    first = np.full(N, 0.7)
    assert np.array_equal(f(first, 0.0), first)
    moved = f(np.zeros(N), 0.04)
    assert np.array_equal(f(np.ones(N), 0.04), moved)  # no time passed: nothing to filter over
    assert np.all(np.isfinite(moved))
    f.reset()
    assert np.array_equal(f(np.ones(N), 0.04), np.ones(N))


# ---------------------------------------------------------------- the mapper's steps


def test_mirror_swaps_left_and_right():
    m = ExpressionMapper(raw(mirror=True))
    out = m(vec(eyeBlinkLeft=0.9, mouthSmileRight=0.4, jawLeft=0.2, jawOpen=0.5), 0.0)
    assert out[IDX["eyeBlinkRight"]] == pytest.approx(0.9) and out[IDX["eyeBlinkLeft"]] == 0
    assert out[IDX["mouthSmileLeft"]] == pytest.approx(0.4) and out[IDX["mouthSmileRight"]] == 0
    assert out[IDX["jawRight"]] == pytest.approx(0.2) and out[IDX["jawOpen"]] == pytest.approx(0.5)


def test_relative_mode_maps_the_drivers_neutral_onto_the_identitys():
    rng = np.random.default_rng(3)
    driver_neutral = (rng.random(N) * 0.3).astype(np.float32)
    identity_neutral = (rng.random(N) * 0.3).astype(np.float32)
    m = ExpressionMapper(raw(relative=True), identity_neutral=identity_neutral)
    m.set_neutral(driver_neutral)
    out = m(driver_neutral, 0.0)
    assert np.allclose(out[1:], identity_neutral[1:], atol=1e-6)
    # A driver smile adds its change on top of the identity's own face.
    smiling = driver_neutral.copy()
    smiling[IDX["mouthSmileLeft"]] += 0.5
    out = m(smiling, 0.04)
    expected = min(1.0, identity_neutral[IDX["mouthSmileLeft"]] + 0.5)
    assert out[IDX["mouthSmileLeft"]] == pytest.approx(expected, abs=1e-6)
    assert np.all((out >= 0) & (out <= 1))


def test_relative_intensity_scales_the_deviation_from_the_identity_neutral():
    identity_neutral = vec(mouthSmileLeft=0.2, browInnerUp=0.1)
    m = ExpressionMapper(raw(relative=True, intensity=2.0), identity_neutral=identity_neutral)
    m.set_neutral(np.zeros(N))
    out = m(vec(mouthSmileLeft=0.1, jawOpen=0.3), 0.0)
    # smile: neutral 0.2 + 2 x 0.1; jaw: 0 + 2 x 0.3; brow untouched at the identity's 0.1
    assert out[IDX["mouthSmileLeft"]] == pytest.approx(0.4)
    assert out[IDX["jawOpen"]] == pytest.approx(0.6)
    assert out[IDX["browInnerUp"]] == pytest.approx(0.1)


def test_region_gain_changes_only_that_region():
    x = np.full(N, 0.4, np.float32)
    base = ExpressionMapper(raw())(x, 0.0)
    out = ExpressionMapper(raw(gains={"mouth": 2.0}))(x, 0.0)
    mouth = {IDX[n] for n in REGIONS["mouth"]}
    assert mouth and all(BLENDSHAPE_NAMES[i].startswith("mouth") for i in mouth)
    for i in range(N):
        if i in mouth:
            assert out[i] == pytest.approx(0.8)
        else:
            assert out[i] == base[i]
    # A name's own gain wins over its region's, and gains clip at 1.
    out = ExpressionMapper(raw(gains={"mouth": 2.0, "mouthPucker": 0.5, "jawOpen": 5}))(x, 0.0)
    assert out[IDX["mouthPucker"]] == pytest.approx(0.2) and out[IDX["jawOpen"]] == 1.0


def test_neutral_score_is_untouched_by_gains():
    x = vec(_neutral=0.3, jawOpen=0.2)
    out = ExpressionMapper(raw(intensity=3.0, gains={"jaw": 2.0}))(x, 0.0)
    assert out[0] == pytest.approx(0.3) and out[IDX["jawOpen"]] == pytest.approx(1.0)


def test_unknown_gain_name_is_a_clear_error():
    with pytest.raises(RetargetError, match="unknown gain 'lips'"):
        ExpressionMapper(raw(gains={"lips": 1.2}))


def test_no_face_holds_the_last_output_and_is_counted():
    m = ExpressionMapper(MappingSettings())
    assert np.array_equal(m(None, 0.0), np.zeros(N, np.float32))  # nothing seen yet: the identity neutral
    last = m(vec(jawOpen=0.6), 0.04)
    for k in range(3):
        assert np.array_equal(m(None, 0.08 + 0.04 * k), last)
    assert m.frames_without_face == 4
    m.reset()
    assert m.frames_without_face == 0


def test_calibration_window_uses_the_median():
    rng = np.random.default_rng(5)
    window = (0.2 + rng.normal(0, 0.02, (9, N))).clip(0, 1).astype(np.float32)
    window[4] = 0.9  # one grimace during calibration must not move the neutral
    identity_neutral = np.full(N, 0.05, np.float32)
    m = ExpressionMapper(raw(relative=True, calibration_window=9), identity_neutral=identity_neutral)
    for i, x in enumerate(window[:8]):
        assert np.allclose(m(x, i / FPS)[1:], identity_neutral[1:])  # still calibrating
        assert not m.calibrated
    m(window[8], 8 / FPS)
    assert m.calibrated
    assert np.allclose(m.driver_neutral, np.median(window, axis=0), atol=1e-7)
    out = m(np.median(window, axis=0), 9 / FPS)
    assert np.allclose(out[1:], identity_neutral[1:], atol=1e-6)
    # calibrate() does the same from an explicit window.
    other = ExpressionMapper(raw(relative=True))
    assert np.allclose(other.calibrate(window), np.median(window, axis=0), atol=1e-7)


@pytest.mark.parametrize("rate", [12.0, 25.0, 30000 / 1001, 60.0])
def test_the_relative_neutral_is_the_first_second_whatever_the_rate(rate):
    """Relative mode's default neutral: the median of the driver's first second of face (not 25 frames)."""
    from retarget.expression.flame import FlameMapper

    rng = np.random.default_rng(3)
    frames = int(rate * 2)
    values = (0.2 + rng.normal(0, 0.05, (frames, N))).clip(0, 1).astype(np.float32)
    start = 0.4  # the first face's time: the second counts from there
    times = start + np.arange(frames) / rate
    in_window = times - start < 1.0 - 1e-9
    m = ExpressionMapper(raw(relative=True))
    m(None, 0.0)  # a frame without a face before: not part of the window
    for t, x, inside in zip(times, values, in_window):
        m(x, float(t))
        if inside:
            assert not m.calibrated
        else:
            break
    assert m.calibrated
    assert np.allclose(m.driver_neutral, np.median(values[in_window], axis=0), atol=1e-7)
    assert in_window.sum() == int(np.ceil(rate - 1e-6))  # 12 frames at 12 fps, 60 at 60 Hz
    flame = FlameMapper(MappingSettings(smoothing=False, relative=True), identity_flame=np.zeros(55))
    for t in times[in_window]:
        flame(np.full(55, 0.1), float(t))
    assert not flame.calibrated
    flame(np.full(55, 0.1), float(times[~in_window][0]))
    assert flame.calibrated


def test_mapping_is_deterministic_for_csv_and_direct_vectors():
    rng = np.random.default_rng(9)
    frames = rng.random((30, N)).astype(np.float32)
    settings = MappingSettings(relative=True, mirror=True, gains={"eyes": 1.5}, calibration_window=5)
    a, b = ExpressionMapper(settings), ExpressionMapper(settings)
    # A CSV hands back float32 values (maybe as float64); both must map to identical bits.
    out_a = [a(x, i / FPS) for i, x in enumerate(frames)]
    out_b = [b(x.astype(np.float64), i / FPS) for i, x in enumerate(frames)]
    assert all(np.array_equal(p, q) and p.dtype == np.float32 for p, q in zip(out_a, out_b))


def test_smoothing_is_applied_by_default():
    m = ExpressionMapper(MappingSettings())
    m(vec(), 0.0)
    out = m(vec(jawOpen=1.0), 1 / FPS)
    assert 0 < out[IDX["jawOpen"]] < 1


def test_csv_round_trip_maps_to_the_same_vectors(tmp_path):
    from retarget.media.blendshape_csv import BlendshapeCsvWriter
    from retarget.media.sources import BlendshapeCsvSource

    rng = np.random.default_rng(11)
    frames = rng.random((20, N)).astype(np.float32)
    times = np.arange(20) / 29.97
    with BlendshapeCsvWriter(tmp_path / "driver.csv") as writer:
        for t, x in zip(times, frames):
            writer.write(t, x)
    settings = MappingSettings(relative=True, gains={"mouth": 1.3}, calibration_window=4)
    direct, from_csv = ExpressionMapper(settings), ExpressionMapper(settings)
    want = [direct(x, t) for t, x in zip(times, frames)]
    with BlendshapeCsvSource(tmp_path / "driver.csv") as src:
        got = [from_csv(f.blendshapes, f.time) for f in src]
    assert all(np.array_equal(p, q) for p, q in zip(want, got))


def test_nan_cells_in_a_csv_are_missing_values_and_never_reach_the_filter(tmp_path):
    from retarget.names.blendshapes import BLENDSHAPE_NAMES
    from retarget.config.mapping import MappingSettings
    from retarget.expression.mapping import ExpressionMapper
    from retarget.media.sources import BlendshapeCsvSource

    rows = ["timestamp," + ",".join(BLENDSHAPE_NAMES)]
    for i in range(6):
        values = [0.1 * (i % 3)] * len(BLENDSHAPE_NAMES)
        cells = [f"{v}" for v in values]
        if i == 2:
            cells[10] = "nan"
        if i == 4:
            cells[3] = "inf"
        rows.append(f"{i / 25}," + ",".join(cells))
    path = tmp_path / "take.csv"
    path.write_text("\n".join(rows) + "\n")
    source = BlendshapeCsvSource(path)
    assert source.missing_values == 2
    mapper = ExpressionMapper(MappingSettings(smoothing=True))
    outputs = [mapper(frame.blendshapes, frame.time) for frame in source]
    assert all(np.isfinite(o).all() for o in outputs)
    np.testing.assert_array_equal(outputs[2], outputs[1])  # held
    assert mapper.frames_without_face == 2
    assert np.abs(outputs[5] - outputs[3]).max() > 0  # the filter kept working after the missing values


def test_a_nan_vector_handed_to_the_mapper_is_held_not_filtered():
    from retarget.config.mapping import MappingSettings
    from retarget.expression.mapping import ExpressionMapper

    mapper = ExpressionMapper(MappingSettings(smoothing=True))
    first = mapper(np.full(52, 0.5, np.float32), 0.0)
    bad = np.full(52, 0.5, np.float32)
    bad[7] = np.nan
    np.testing.assert_array_equal(mapper(bad, 0.04), first)
    assert np.isfinite(mapper(np.full(52, 0.2, np.float32), 0.08)).all()
