"""The bridge file: round trip, the map it applies, and refusals (another adapter, not a bridge, NaN)."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import BadInputError
from retarget.expression.bridge import (ExpressionBridge, adapter_sha256, cache_bridge_path, find_bridge,
                                        load_bridge_for)


def _bridge(sha="a" * 64, seed=0):
    rng = np.random.default_rng(seed)
    return ExpressionBridge(rng.normal(size=(52, 55)) * 0.1, rng.normal(size=55) * 0.1, sha,
                            {"source": "test", "samples": 10, "r2": {"all": 0.5}})


def test_round_trip_keeps_weights_and_report(tmp_path):
    bridge = _bridge()
    path = bridge.save(tmp_path / "b.safetensors")
    back = ExpressionBridge.load(path, adapter_sha256="a" * 64)
    assert np.array_equal(back.weight, bridge.weight) and np.array_equal(back.bias, bridge.bias)
    assert back.report == bridge.report and back.adapter_sha256 == "a" * 64


def test_the_map_is_linear_then_smirk_clamps():
    bridge = _bridge()
    x = np.random.default_rng(1).uniform(0, 1, size=(7, 52)).astype(np.float32)
    y = bridge(x)
    raw = x @ bridge.weight + bridge.bias
    assert y.shape == (7, 55) and y.dtype == np.float32
    np.testing.assert_allclose(y[:, :50], raw[:, :50], rtol=1e-6, atol=1e-6)
    assert (y[:, 50:52] >= 0).all() and (y[:, 50:52] <= 1).all() and (y[:, 52] >= 0).all()
    assert np.abs(y[:, 53:55]).max() <= 0.2
    assert bridge(x[0]).shape == (55,)


def test_a_bridge_for_another_adapter_is_refused_in_one_line(tmp_path):
    path = _bridge(sha="b" * 64).save(tmp_path / "b.safetensors")
    with pytest.raises(BadInputError) as err:
        ExpressionBridge.load(path, adapter_sha256="c" * 64)
    assert "another Expression Adapter" in str(err.value) and "retarget bridge fit" in str(err.value)
    assert "\n" not in str(err.value)


def test_not_a_bridge_and_nan_weights_are_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(BadInputError, match="not an expression bridge"):
        ExpressionBridge.load(junk)
    bad = _bridge()
    bad.weight[3, 4] = np.nan
    path = bad.save(tmp_path / "nan.safetensors")
    with pytest.raises(BadInputError, match="NaN"):
        ExpressionBridge.load(path)


def test_found_beside_the_models_then_in_the_cache_keyed_by_adapter_content(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    adapter = tmp_path / "models" / "exp_adapter" / "exp_adapter.bin"
    adapter.parent.mkdir(parents=True)
    adapter.write_bytes(b"adapter bytes")
    sha = adapter_sha256(adapter)
    assert find_bridge(adapter) is None and load_bridge_for(adapter) is None
    cached = _bridge(sha=sha).save(cache_bridge_path(sha))
    assert find_bridge(adapter) == cached
    beside = _bridge(sha=sha, seed=3).save(tmp_path / "models" / "bridge" / cached.name)
    assert find_bridge(adapter) == beside
    assert np.array_equal(load_bridge_for(adapter).weight, _bridge(sha=sha, seed=3).weight)
    # A copy of the adapter elsewhere (same bytes) finds the cached bridge: keyed by content, not path.
    copy = tmp_path / "elsewhere.bin"
    copy.write_bytes(b"adapter bytes")
    assert find_bridge(copy) == cached
    # Changed adapter bytes: the old bridge is not found.
    adapter.write_bytes(b"retrained adapter")
    assert find_bridge(adapter) is None
