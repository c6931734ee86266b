"""Where the FLAME vectors of a bridge's synthesis renders come from (analysis by synthesis needs a prior).

Two priors, and the report says which was used:
- `FlamePrior.from_values(flame)`: SMIRK's values on real frames (rows drawn at random, each with
  a little Gaussian jitter of JITTER x the value's spread), the better choice when frames exist;
- `FlamePrior.default()`: a stated per-group distribution, an assumption rather than a measurement:
  expression coefficient i ~ N(0, s_i) with s = 1.0 for the first 10, 0.5 for the next 10 and
  0.25 for the last 30 (FLAME's components are ordered by variance); eyelids: with probability
  0.7 both lids alike ~ U(0, 0.4) (open eyes, blinks are rare), else each ~ U(0, 1); jaw opening
  |N(0, 0.12)| radians (at most 0.5), jaw sideways N(0, 0.03) each. Then SMIRK's output clamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retarget.expression.flame import NUM_FLAME

JITTER = 0.25
DEFAULT_PRIOR_TEXT = ("per-group default: expression N(0, 1.0/0.5/0.25 for coefficients 0-9/10-19/20-49); "
                      "eyelids alike U(0, 0.4) (p 0.7) else U(0, 1) each; jaw open |N(0, 0.12)| <= 0.5, sideways N(0, 0.03)")


def _clamped(flame: np.ndarray) -> np.ndarray:
    flame[:, 50:52] = np.clip(flame[:, 50:52], 0.0, 1.0)
    flame[:, 52] = np.clip(flame[:, 52], 0.0, 0.5)
    flame[:, 53:55] = np.clip(flame[:, 53:55], -0.2, 0.2)
    return flame.astype(np.float32)


@dataclass
class FlamePrior:
    values: np.ndarray | None = None  # (M, 55) SMIRK values on frames; None: the default distribution
    description: str = DEFAULT_PRIOR_TEXT

    @classmethod
    def default(cls) -> "FlamePrior":
        return cls(None, DEFAULT_PRIOR_TEXT)

    @classmethod
    def from_values(cls, flame, description: str = "SMIRK's values on frames") -> "FlamePrior":
        values = np.asarray(flame, dtype=np.float32).reshape(-1, NUM_FLAME)
        if len(values) == 0:
            raise ValueError("a FLAME prior from values needs at least one row")
        return cls(values, f"{description} ({len(values)} rows, jitter {JITTER} x spread)")

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, 55) float32 FLAME vectors."""
        if self.values is not None:
            rows = self.values[rng.integers(0, len(self.values), size=count)].astype(np.float64)
            spread = self.values.std(axis=0).astype(np.float64)
            return _clamped(rows + rng.normal(size=rows.shape) * spread * JITTER)
        flame = np.zeros((count, NUM_FLAME), dtype=np.float64)
        scale = np.concatenate([np.full(10, 1.0), np.full(10, 0.5), np.full(30, 0.25)])
        flame[:, :50] = rng.normal(size=(count, 50)) * scale
        alike = rng.random(count) < 0.7
        lid = rng.uniform(0.0, 0.4, size=count)
        flame[:, 50] = np.where(alike, lid, rng.uniform(0.0, 1.0, size=count))
        flame[:, 51] = np.where(alike, lid, rng.uniform(0.0, 1.0, size=count))
        flame[:, 52] = np.abs(rng.normal(0.0, 0.12, size=count))
        flame[:, 53:55] = rng.normal(0.0, 0.03, size=(count, 2))
        return _clamped(flame)


def random_identities(count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 512) random unit ArcFace vectors: Arc2Face renders a plausible new person for each."""
    vectors = rng.normal(size=(count, 512))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
