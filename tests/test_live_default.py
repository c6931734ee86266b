"""The app's first-run live preset by device (issue #21): on a GPU the fastest preset that keeps the paper's look,
decided from the per-frame work each preset does; on a CPU the paper's settings stay."""

from __future__ import annotations

import pytest

from retarget.config import PRESETS
from retarget.config.live_default import KEEPS_PAPER_LOOK, TFLOP_PER_FRAME, live_default_preset


@pytest.mark.parametrize("device, lcm, expected", [
    ("cuda", True, "lcm"),
    ("cuda", False, "balanced"),
    ("cuda:1", False, "balanced"),
    ("mps", True, "lcm"),
    ("mps", False, "balanced"),
    ("cpu", True, None),
    ("cpu", False, None),
])
def test_the_live_default_by_device(device, lcm, expected):
    assert live_default_preset(device, lcm) == expected


def test_a_torch_device_is_read_by_its_type():
    import torch

    assert live_default_preset(torch.device("cuda", 0), False) == "balanced"
    assert live_default_preset(torch.device("cpu"), True) is None


def test_the_figures_name_every_preset_and_fast_is_never_a_default():
    assert set(TFLOP_PER_FRAME) == set(PRESETS)
    assert "fast" not in KEEPS_PAPER_LOOK  # CFG 2: less precise identity and expression
    # The paper's look: its CFG (balanced) or the LCM mode; the choice follows the work per frame.
    assert PRESETS["balanced"].cfg == PRESETS["quality"].cfg
    assert TFLOP_PER_FRAME["lcm"] < TFLOP_PER_FRAME["balanced"] < TFLOP_PER_FRAME["quality"]
