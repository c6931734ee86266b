"""A variable-frame-rate driver rendered through the CLI keeps its frame times in the output (pts)."""

from __future__ import annotations

import pytest

from retarget.cli import main
from tests.conftest import needs_shared
from tests.media.test_variable_frame_rate import LAST, TIMES, packet_times, write_vfr

pytestmark = needs_shared


def test_a_vfr_driver_keeps_its_frame_times(tmp_path, shared_dir, landmarker_path, blendshape_models_dir):
    driver = write_vfr(tmp_path / "vfr.mp4")
    out = tmp_path / "out.mp4"
    assert main(["--headless", "--models", str(blendshape_models_dir), "--landmarker", str(landmarker_path),
                 "--steps", "1", "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"),
                 "--driver", str(driver), "--out", str(out), "--batch-size", "8"]) == 0
    times, last = packet_times(out)
    assert times == pytest.approx(TIMES, abs=1e-4)  # not flattened to the average rate
    assert last == pytest.approx(LAST, abs=1e-4)
