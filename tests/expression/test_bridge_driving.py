"""The expression bridge used where blendshapes meet the FLAME-55 adapter: the mapping path, CSV drivers,
bridge-mode driving (no SMIRK), and the one-line refusals without a bridge or with another adapter's."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from retarget.config import MappingSettings
from retarget.engine.driving import DriverAnalyzer
from retarget.errors import BadInputError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.expression.bridge import FIT_COMMAND, ExpressionBridge, adapter_sha256, cache_bridge_path
from retarget.expression.bridge_mapping import BridgeMapper
from retarget.expression.signals import BLENDSHAPES, PICTURES, signal_refusal


def accepts_driver(kind, signal, bridge_available, expression_source="smirk"):
    return driver_refusal(kind, signal, bridge_available, expression_source) is None


def driver_refusal(kind, signal, bridge_available, expression_source="smirk"):
    return signal_refusal(kind, signal, bridge_available=bridge_available, expression_source=expression_source)
from retarget.expression.flame import control_support
from retarget.config.mapping import REGIONS
from retarget.expression.mapping import ExpressionMapper
from retarget.media.sources import Frame

MOUTH = [BLENDSHAPE_NAMES.index(n) for n in REGIONS["mouth"]]


def make_bridge(sha="a" * 64, seed=0) -> ExpressionBridge:
    rng = np.random.default_rng(seed)
    return ExpressionBridge(rng.normal(size=(52, 55)) * 0.3, rng.normal(size=55) * 0.05, sha, {"source": "test"})


def csv_frame(index: int, values) -> Frame:
    return Frame(index, index / 25.0, None, blendshapes=np.asarray(values, np.float32))


def test_the_bridge_mapper_is_the_blendshape_mapping_then_the_bridge():
    bridge = make_bridge()
    settings = MappingSettings(smoothing=True, relative=True, calibration_window=3, gains={"mouth": 1.7, "brows": 0.5},
                               mirror=True, intensity=1.2)
    identity = np.random.default_rng(1).uniform(0, 0.3, 52).astype(np.float32)
    bridged, plain = BridgeMapper(bridge, settings, identity), ExpressionMapper(settings, identity)
    for i, row in enumerate(np.random.default_rng(2).uniform(0, 1, (8, 52)).astype(np.float32)):
        flame = bridged(row, i / 25)
        np.testing.assert_array_equal(flame, bridge(plain(row, i / 25)))
        assert flame.shape == (55,)


def test_region_gains_act_on_a_flame_adapter_through_the_bridge():
    bridge = make_bridge()
    row = np.random.default_rng(3).uniform(0.2, 0.6, 52).astype(np.float32)
    one = BridgeMapper(bridge, MappingSettings(smoothing=False))(row, 0.0)
    mouth = BridgeMapper(bridge, MappingSettings(smoothing=False, gains={"mouth": 1.5}))(row, 0.0)
    scaled = row.copy()
    scaled[MOUTH] = np.clip(scaled[MOUTH] * 1.5, 0, 1)
    assert not np.array_equal(one, mouth)
    np.testing.assert_allclose(mouth, bridge(scaled), rtol=1e-6, atol=1e-6)
    # The FLAME-only expression gain scales the bridge's 50 coefficients after it.
    doubled = BridgeMapper(bridge, MappingSettings(smoothing=False, gains={"expression": 2.0}))(row, 0.0)
    np.testing.assert_allclose(doubled[:50], 2 * one[:50], rtol=1e-6)
    np.testing.assert_array_equal(doubled[50:], one[50:])


def test_control_support_says_region_gains_apply_in_bridge_mode_only():
    smirk, bridged = control_support("flame55"), control_support("flame55", bridge=True)
    assert smirk["gain.mouth"] is not None and smirk["gain.brows"] is not None
    assert all(bridged[f"gain.{region}"] is None for region in REGIONS) and bridged["gain.expression"] is None


def test_the_driver_rule_needs_a_bridge_for_blendshapes_on_flame():
    assert accepts_driver("blendshapes52", BLENDSHAPES, False) and accepts_driver("flame55", PICTURES, False)
    assert accepts_driver("flame55", BLENDSHAPES, True) and accepts_driver("flame55", PICTURES, True, "bridge")
    for signal, source in ((BLENDSHAPES, "smirk"), (PICTURES, "bridge")):
        reason = driver_refusal("flame55", signal, False, source)
        assert reason is not None and FIT_COMMAND in reason and "\n" not in reason


def test_a_csv_drives_a_flame_analyzer_through_the_bridge_and_never_needs_smirk(tmp_path):
    bridge = make_bridge()
    mapping = MappingSettings(smoothing=False, gains={"cheeks": 2.0})
    unused = tmp_path / "face_landmarker.task"  # a CSV driver never runs the landmarker
    analyzer = DriverAnalyzer("flame55", unused, mapping, bridge=bridge,
                              smirk_loader=lambda: pytest.fail("SMIRK loaded for a CSV driver"))
    rows = np.random.default_rng(4).uniform(0, 0.8, (5, 52)).astype(np.float32)
    for i, row in enumerate(rows):
        driven = analyzer(csv_frame(i, row))
        np.testing.assert_array_equal(driven.expression, BridgeMapper(bridge, mapping)(row, 0.0))
        assert driven.expression.shape == (55,) and driven.blendshapes.shape == (52,)
    assert analyzer.via_bridge and analyzer.smirk is None


def test_a_csv_without_a_bridge_is_refused_in_one_line_naming_the_command(tmp_path):
    analyzer = DriverAnalyzer("flame55", tmp_path / "unused.task", MappingSettings(), smirk_loader=lambda: None)
    with pytest.raises(BadInputError) as err:
        analyzer(csv_frame(0, np.zeros(52)))
    assert "retarget bridge fit" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BadInputError, match="retarget bridge fit"):
        DriverAnalyzer("flame55", tmp_path / "unused.task", MappingSettings(expression_source="bridge"), smirk_loader=lambda: None)


def test_a_csv_row_as_relative_neutral_reaches_the_bridge_mapper(tmp_path):
    bridge = make_bridge()
    mapping = MappingSettings(smoothing=False, relative=True)
    neutral = np.full(52, 0.2, np.float32)
    analyzer = DriverAnalyzer("flame55", tmp_path / "unused.task", mapping, identity_neutral=np.zeros(52, np.float32),
                              bridge=bridge, smirk_loader=lambda: pytest.fail("SMIRK loaded"))
    analyzer.set_neutral_from(neutral)  # --neutral-frame of a CSV: its raw blendshapes
    row = np.full(52, 0.5, np.float32)
    expected = BridgeMapper(bridge, mapping, np.zeros(52, np.float32))
    expected.set_neutral(neutral)
    np.testing.assert_array_equal(analyzer(csv_frame(0, row)).expression, expected(row, 0.0))


# ---------------------------------------------------------------- with the tiny FLAME-55 models
@pytest.fixture
def tiny_bridge(tiny_models_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own-cache"))  # other tests expect no bridge for the tiny models
    adapter = tiny_models_dir / "exp_adapter" / "exp_adapter.bin"
    sha = adapter_sha256(adapter)
    path = make_bridge(sha).save(cache_bridge_path(sha))
    yield ExpressionBridge.load(path, sha)
    path.unlink()


def test_the_retargeter_finds_the_bridge_and_refuses_another_adapters(tiny_models_dir, tiny_bridge, landmarker_path, tmp_path):
    from retarget.config.models import ModelOptions
    from retarget.session.retargeter import load_retargeter

    options = ModelOptions(models=str(tiny_models_dir), device="cpu", landmarker=landmarker_path)
    retargeter, _ = load_retargeter(options)
    with retargeter:
        assert retargeter.bridge is not None and np.array_equal(retargeter.bridge.weight, tiny_bridge.weight)
        assert retargeter.control_support_for("bridge")["gain.mouth"] is None
        assert retargeter.control_support_for("smirk")["gain.mouth"] is not None
    other = make_bridge("f" * 64).save(tmp_path / "other.safetensors")
    with pytest.raises(BadInputError) as err:
        load_retargeter(replace(options, bridge=other))
    assert "another Expression Adapter" in str(err.value) and "\n" not in str(err.value)


def test_live_driving_in_bridge_mode_runs_no_smirk(tiny_models_dir, tiny_bridge, landmarker_path, shared_dir, monkeypatch):
    from retarget.config import GenerationSettings
    from retarget.face import smirk as smirk_module
    from retarget.session import Session

    calls = {"load": 0, "encode": 0}
    real_init, real_encode = smirk_module.SmirkExtractor.__init__, smirk_module.SmirkExtractor.encode

    def counted_init(self, *a, **k):
        calls["load"] += 1
        real_init(self, *a, **k)

    def counted_encode(self, *a, **k):
        calls["encode"] += 1
        return real_encode(self, *a, **k)

    monkeypatch.setattr(smirk_module.SmirkExtractor, "__init__", counted_init)
    monkeypatch.setattr(smirk_module.SmirkExtractor, "encode", counted_encode)
    mapping = MappingSettings(expression_source="bridge", gains={"mouth": 1.4})
    frames, three = [], threading.Event()
    with Session(keep_rows=False) as session:
        session.load_models(str(tiny_models_dir), device="cpu", landmarker=landmarker_path, expression_source="bridge")
        session.set_identity(shared_dir / "media" / "identity_hepburn_small.png")
        session.on("frame", lambda result: (frames.append(result.driven), len(frames) >= 3 and three.set()))
        session.start_live(str(shared_dir / "media" / "driver_d0.mp4"), settings=GenerationSettings(steps=1), mapping=mapping)
        assert three.wait(timeout=120)
        session.stop_live()
    assert calls == {"load": 0, "encode": 0}
    seen = [f for f in frames if f.face_found]
    assert seen and all(f.expression.shape == (55,) for f in seen)
    for f in seen:  # what the generator got is the bridge of the mapped blendshapes
        np.testing.assert_allclose(f.expression, tiny_bridge(f.blendshapes), rtol=1e-5, atol=1e-6)


def test_a_fitted_bridge_is_handed_to_the_loaded_models_through_the_session(tiny_models_dir, landmarker_path, tmp_path,
                                                                          monkeypatch):
    """The app's calibration hands its new bridge to the Session, which attaches only the loaded adapter's own."""
    from retarget.session import Session

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own-cache"))  # no bridge fitted yet for the tiny models
    sha = adapter_sha256(tiny_models_dir / "exp_adapter" / "exp_adapter.bin")
    with Session() as session:
        session.load_models(str(tiny_models_dir), device="cpu", landmarker=landmarker_path, expression_source="bridge")
        assert session.bridge is None
        assert not session.use_bridge(make_bridge("b" * 64)) and session.bridge is None  # another adapter's
        own = make_bridge(sha, seed=1)
        assert session.use_bridge(own) and session.bridge is own
