"""`retarget bench` runs on the CPU with tiny models and reports every stage and the baseline ratio (figures are not asserted)."""

from __future__ import annotations

import json

from retarget.cli import main
from tests.conftest import needs_shared


@needs_shared
def test_bench_reports_every_stage_and_the_baseline(tmp_path, tiny_models_dir, landmarker_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--models", str(tiny_models_dir), "--frames", "2", "--batch-size", "2", "--repeat", "1",
                 "--presets", "quality,fast", "--landmarker", str(landmarker_path), "--json", str(out)])
    assert code == 0
    results = json.loads(out.read_text())
    for stage in ("decode_fps", "decode_perception_mapping_fps", "mapping_ms_per_frame", "identity_context_ms",
                  "unet_step_ms", "vae_decode_ms_per_frame", "encode_ms_per_frame"):
        assert results["stages"][stage] > 0, stage
    assert set(results["presets"]) == {"quality", "fast"}
    assert results["presets"]["fast"]["steps"] < results["presets"]["quality"]["steps"]
    assert results["baseline"]["speedup_quality_vs_baseline"] > 0
    assert {"device", "versions", "models", "dtype"} <= set(results)
    table = capsys.readouterr().out
    assert "baseline" in table and "UNet step" in table
