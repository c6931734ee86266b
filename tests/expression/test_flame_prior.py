"""The FLAME prior of the synthesis renders: the stated default distribution and SMIRK's values on frames."""

from __future__ import annotations

import numpy as np

from retarget.expression.flame_prior import FlamePrior, random_identities


def test_the_default_prior_stays_in_smirk_ranges_and_is_reproducible():
    a = FlamePrior.default().sample(2000, np.random.default_rng(0))
    b = FlamePrior.default().sample(2000, np.random.default_rng(0))
    assert a.shape == (2000, 55) and a.dtype == np.float32 and np.array_equal(a, b)
    assert (a[:, 50:52] >= 0).all() and (a[:, 50:52] <= 1).all() and (a[:, 52] >= 0).all()
    assert np.abs(a[:, 53:55]).max() <= 0.2
    spread = a[:, :50].std(axis=0)
    assert 0.9 < spread[:10].mean() < 1.1 and 0.2 < spread[20:].mean() < 0.3  # as documented: 1.0 ... 0.25


def test_a_prior_from_values_samples_near_those_values():
    rng = np.random.default_rng(1)
    values = np.zeros((50, 55), np.float32)
    values[:, 0] = rng.normal(2.0, 0.1, size=50)
    drawn = FlamePrior.from_values(values).sample(500, rng)
    assert abs(drawn[:, 0].mean() - 2.0) < 0.05 and np.abs(drawn[:, 1:50]).max() == 0.0
    assert "SMIRK" in FlamePrior.from_values(values).description


def test_random_identities_are_unit_vectors():
    ids = random_identities(5, np.random.default_rng(2))
    np.testing.assert_allclose(np.linalg.norm(ids, axis=1), 1.0, rtol=1e-5)
