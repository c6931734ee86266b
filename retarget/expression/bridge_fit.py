"""Fitting the expression bridge: ridge regression 52 blendshapes -> 55 FLAME values, scored on held-out time blocks.

- The held-out part is a contiguous block at the end of each clip (`groups`), never random frames:
  neighbouring video frames are nearly equal, so a random split would score the fit on copies of
  its own training data.
- Ridge in closed form (centred, the bias unpenalised). alpha is picked from ALPHAS on a second
  time block (the end of each clip's training part), then the map is refitted on all training rows.
- The report's R^2 per output group is 1 - SSE/SST over the group's values together (the share of
  the group's held-out variance the map explains; None where the held-out values do not vary),
  MAE the mean absolute error; both on held-out rows only, after SMIRK's clamps, so a fitter
  cannot report more than the map does.
An MLP was not added: the issue asks for one only where it beats ridge on held-out data, and no
such measurement exists yet (see the report's `model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from retarget.errors import BadInputError
from retarget.names.blendshapes import NUM_BLENDSHAPES
from retarget.expression.bridge import ExpressionBridge
from retarget.expression.flame import FLAME_GROUPS, NUM_FLAME

ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
HELD_OUT = 0.2  # share of each clip kept for scoring
MIN_SAMPLES = 10


@dataclass
class BridgePairs:
    """(N, 52) blendshapes and the (N, 55) FLAME values of the same faces; groups: which clip each row is from (in time order)."""

    blendshapes: np.ndarray
    flame: np.ndarray
    groups: np.ndarray

    def __post_init__(self) -> None:
        self.blendshapes = np.asarray(self.blendshapes, dtype=np.float64).reshape(-1, NUM_BLENDSHAPES)
        self.flame = np.asarray(self.flame, dtype=np.float64).reshape(-1, NUM_FLAME)
        self.groups = np.asarray(self.groups).reshape(-1)
        if not (len(self.blendshapes) == len(self.flame) == len(self.groups)):
            raise ValueError(f"{len(self.blendshapes)} blendshape rows, {len(self.flame)} FLAME rows, {len(self.groups)} groups")

    def __len__(self) -> int:
        return len(self.blendshapes)


def tail_split(groups, fraction: float = HELD_OUT) -> np.ndarray:
    """A boolean mask of held-out rows: the last `fraction` of each group's rows (at least one, never all)."""
    groups = np.asarray(groups).reshape(-1)
    held = np.zeros(len(groups), dtype=bool)
    for group in dict.fromkeys(groups.tolist()):
        rows = np.flatnonzero(groups == group)
        if len(rows) < 2:
            continue  # a one-row clip trains only
        count = min(len(rows) - 1, max(1, int(round(len(rows) * fraction))))
        held[rows[-count:]] = True
    return held


def fit_ridge(x, y, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """W (d, k), b (k,) minimising |x W + b - y|^2 + alpha |W|^2 (closed form on centred data)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc + alpha * np.eye(x.shape[1])
    weight = np.linalg.solve(gram, xc.T @ yc)
    return weight, y_mean - x_mean @ weight


def group_scores(y_true, y_pred) -> tuple[dict, dict]:
    """(r2, mae) per output group and "all"; r2 None where the true values do not vary."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    r2, mae = {}, {}
    for name, part in (*FLAME_GROUPS.items(), ("all", slice(0, NUM_FLAME))):
        t, p = y_true[:, part], y_pred[:, part]
        sst = float(((t - t.mean(axis=0)) ** 2).sum())
        sse = float(((t - p) ** 2).sum())
        r2[name] = None if sst <= 1e-12 * max(1, t.size) else 1.0 - sse / sst
        mae[name] = float(np.abs(t - p).mean()) if t.size else None
    return r2, mae


def _predict(weight, bias, x, sha="") -> np.ndarray:
    return ExpressionBridge(weight, bias, sha)(np.asarray(x, dtype=np.float32)).astype(np.float64)


def choose_alpha(x, y, groups) -> float:
    """The ALPHAS value with the smallest validation error on the last block of each clip's training rows."""
    held = tail_split(groups)
    if held.all() or not held.any():
        return 1.0
    errors = []
    for alpha in ALPHAS:
        weight, bias = fit_ridge(x[~held], y[~held], alpha)
        errors.append(float(np.abs(_predict(weight, bias, x[held]) - y[held]).mean()))
    return ALPHAS[int(np.argmin(errors))]


def fit_bridge(pairs: BridgePairs, adapter_sha256: str, source: str, data: dict | None = None,
               alpha: float | None = None, extra_report: dict | None = None) -> ExpressionBridge:
    """Fit on the training blocks, score on the held-out blocks, refit on everything; the report says which.

    alpha None: chosen on a validation block (choose_alpha); data: what the pairs came from (files, prior).
    """
    if len(pairs) < MIN_SAMPLES:
        raise BadInputError(f"only {len(pairs)} face(s) with both blendshapes and FLAME values; the bridge needs at least "
                            f"{MIN_SAMPLES} (give a longer video with a face in view, or more --renders)")
    x, y = pairs.blendshapes, pairs.flame
    held = tail_split(pairs.groups)
    if not held.any():
        raise BadInputError("every clip has a single usable frame, so nothing is left to score the bridge on; give longer videos")
    if alpha is None:
        alpha = choose_alpha(x[~held], y[~held], pairs.groups[~held])
    weight, bias = fit_ridge(x[~held], y[~held], alpha)
    r2, mae = group_scores(y[held], _predict(weight, bias, x[held]))
    # The file's map uses every row; the scores above are those of the same model fitted without the held-out rows.
    weight, bias = fit_ridge(x, y, alpha)
    report = {
        "source": source,
        "data": data or {},
        "samples": int(len(pairs)),
        "held_out": int(held.sum()),
        "split": f"the last {HELD_OUT:.0%} of each clip (a time block), never random frames; scored with the map fitted "
                 "without them, the saved map refitted on every row",
        "r2": r2,
        "mae": mae,
        "model": {"kind": "ridge", "alpha": float(alpha), "alpha_chosen_from": list(ALPHAS) if alpha in ALPHAS else None},
        "fitted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    report.update(extra_report or {})
    return ExpressionBridge(weight, bias, adapter_sha256, report)


def format_report(report: dict) -> str:
    """The report as a few printed lines (the CLI and `bridge show`)."""
    lines = [f"source: {report.get('source', '?')}  samples: {report.get('samples', '?')}  held out: {report.get('held_out', '?')}"]
    model = report.get("model") or {}
    if model:
        lines.append(f"model: {model.get('kind', '?')} (alpha {model.get('alpha', '?')})   fitted: {report.get('fitted', '?')}")
    lines.append(f"{'group':<11}{'held-out R^2':>14}{'MAE':>10}")
    for name in (*FLAME_GROUPS, "all"):
        r2 = (report.get("r2") or {}).get(name)
        mae = (report.get("mae") or {}).get(name)
        lines.append(f"{name:<11}{'n/a' if r2 is None else f'{r2:.3f}':>14}{'n/a' if mae is None else f'{mae:.4f}':>10}")
    for key in ("faces_missed", "seconds_per_1000", "device", "wall_seconds"):
        if key in report:
            lines.append(f"{key.replace('_', ' ')}: {report[key]}")
    return "\n".join(lines)
