"""Fitting the bridge: a known map is recovered (held-out R^2 near the truth), random pairs score near 0, time-block split."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import BadInputError
from retarget.expression.bridge_fit import BridgePairs, fit_bridge, fit_ridge, group_scores, tail_split


def _inputs(n, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, 52))


def _true_r2(clean, noisy):
    """The best R^2 any map can reach: that of the noiseless truth against the noisy targets."""
    return group_scores(noisy, clean)[0]


def test_ridge_solves_the_closed_form():
    x = _inputs(200)
    w_true = np.random.default_rng(1).normal(size=(52, 3))
    weight, bias = fit_ridge(x, x @ w_true + 0.5, alpha=1e-8)
    np.testing.assert_allclose(weight, w_true, atol=1e-5)
    np.testing.assert_allclose(bias, 0.5, atol=1e-5)


def test_a_known_linear_map_plus_noise_is_recovered_on_held_out_rows():
    rng = np.random.default_rng(2)
    x = _inputs(1500)
    w_true = rng.normal(size=(52, 55)) * 0.2
    clean = x @ w_true
    # Eyelids and jaw linear too, scaled to sit inside SMIRK's ranges (where the bridge's clamps change nothing).
    clean[:, 50:52] = 0.5 + 0.05 * (clean[:, 50:52] - clean[:, 50:52].mean(axis=0))
    clean[:, 52] = 0.3 + 0.05 * (clean[:, 52] - clean[:, 52].mean())
    clean[:, 53:55] = 0.02 * (clean[:, 53:55] - clean[:, 53:55].mean(axis=0))
    noisy = clean + rng.normal(size=clean.shape) * clean.std(axis=0) * 0.3
    bridge = fit_bridge(BridgePairs(x, noisy, np.zeros(len(x), int)), "a" * 64, "test")
    held = tail_split(np.zeros(len(x), int))
    truth = _true_r2(clean[held], noisy[held])
    assert bridge.report["held_out"] == held.sum() == 300
    for group in ("expression", "jaw", "all"):
        assert bridge.report["r2"][group] == pytest.approx(truth[group], abs=0.03)
    assert bridge.report["r2"]["expression"] > 0.85
    assert bridge.report["model"]["kind"] == "ridge"


def test_a_nonlinear_map_scores_what_a_linear_fit_can_reach():
    rng = np.random.default_rng(3)
    x = _inputs(2000, seed=4)
    w = rng.normal(size=(52, 55)) * 0.3
    clean = np.tanh(x @ w - (x @ w).mean(axis=0))  # mildly nonlinear
    clean[:, 50:55] = 0.1 + 0.01 * clean[:, 50:55]
    noisy = clean + rng.normal(size=clean.shape) * 0.05
    bridge = fit_bridge(BridgePairs(x, noisy, np.zeros(len(x), int)), "a" * 64, "test")
    held = tail_split(np.zeros(len(x), int))
    # The best linear map, fitted on everything (an upper bound for the fitter's held-out score) ...
    weight, bias = fit_ridge(x, noisy, 1e-6)
    best_linear = group_scores(noisy[held], x[held] @ weight + bias)[0]["expression"]
    truth = _true_r2(clean[held], noisy[held])["expression"]
    scored = bridge.report["r2"]["expression"]
    assert scored <= truth + 0.01  # never above what the noiseless truth reaches
    assert scored == pytest.approx(best_linear, abs=0.03)
    assert 0.5 < scored < truth  # a linear map does not capture a nonlinear one fully


def test_random_pairs_score_near_zero():
    rng = np.random.default_rng(5)
    x = _inputs(1000, seed=6)
    y = rng.normal(size=(1000, 55))
    y[:, 50:55] = rng.uniform(0.05, 0.15, size=(1000, 5))
    bridge = fit_bridge(BridgePairs(x, y, np.zeros(1000, int)), "a" * 64, "test")
    for group in ("expression", "all"):
        assert abs(bridge.report["r2"][group]) < 0.1


def test_the_held_out_rows_are_a_time_block_at_the_end_of_each_clip():
    groups = np.array([0] * 10 + [1] * 5 + [2])
    held = tail_split(groups)
    assert held.tolist() == [False] * 8 + [True] * 2 + [False] * 4 + [True] + [False]


def test_too_few_pairs_are_refused_in_one_line():
    with pytest.raises(BadInputError, match="at least") as err:
        fit_bridge(BridgePairs(_inputs(3), np.zeros((3, 55)), np.zeros(3, int)), "a" * 64, "test")
    assert "\n" not in str(err.value)


def test_a_constant_group_has_no_r2_rather_than_a_made_up_one():
    x = _inputs(100)
    y = np.zeros((100, 55))
    y[:, :50] = x[:, :50]
    r2, mae = group_scores(y, y)
    assert r2["jaw"] is None and mae["jaw"] == 0.0 and r2["expression"] == pytest.approx(1.0)
