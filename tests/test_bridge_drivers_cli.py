"""`retarget --headless` with the FLAME-55 test adapter and blendshape drivers: through the fitted bridge, or
refused in one line that names the command fitting one (random tiny models)."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.cli import main
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.expression.bridge import ExpressionBridge, adapter_sha256, cache_bridge_path
from retarget.config.mapping import REGIONS
from retarget.media.blendshape_csv import BlendshapeCsvWriter
from retarget.pipeline import RetargetPipeline
from tests.conftest import needs_shared

pytestmark = needs_shared
FRAMES = 4
MOUTH = [BLENDSHAPE_NAMES.index(n) for n in REGIONS["mouth"]]


def write_csv(path, rows):
    writer = BlendshapeCsvWriter(path)
    for i, row in enumerate(rows):
        writer.write(i / 25.0, row)
    writer.close()
    return path


@pytest.fixture
def rows():
    return np.random.default_rng(5).uniform(0.05, 0.5, (FRAMES, 52)).astype(np.float32)


@pytest.fixture
def bridge_for_tiny(tiny_models_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own-cache"))  # other tests expect no bridge for the tiny models
    sha = adapter_sha256(tiny_models_dir / "exp_adapter" / "exp_adapter.bin")
    rng = np.random.default_rng(9)
    bridge = ExpressionBridge(rng.normal(size=(52, 55)) * 0.3, rng.normal(size=55) * 0.05, sha, {"source": "test"})
    path = bridge.save(cache_bridge_path(sha))
    yield bridge
    path.unlink()


def headless(tiny_models_dir, shared_dir, landmarker_path, driver, out, *extra):
    return main(["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "1",
                 "--device", "cpu", "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"),
                 "--driver", str(driver), "--out", str(out), *extra])


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("retarget: error")]
    assert len(err) == 1
    return err[0]


def test_a_csv_without_a_bridge_is_refused_naming_the_command(tiny_models_dir, shared_dir, landmarker_path, rows,
                                                              tmp_path, capsys):
    csv = write_csv(tmp_path / "take.csv", rows)
    out = tmp_path / "out.mp4"
    assert headless(tiny_models_dir, shared_dir, landmarker_path, csv, out) != 0
    assert "retarget bridge fit" in one_error_line(capsys)
    assert not out.exists() and not list(tmp_path.glob(".*out*"))


def test_bridge_mode_without_a_bridge_is_refused_for_image_drivers_too(tiny_models_dir, shared_dir, landmarker_path,
                                                                       tmp_path, capsys):
    driver = shared_dir / "media" / "expression_exp1_rgba.png"
    out = tmp_path / "still.png"
    assert headless(tiny_models_dir, shared_dir, landmarker_path, driver, out, "--expression-source", "bridge") != 0
    assert "retarget bridge fit" in one_error_line(capsys) and not out.exists()


def test_a_bridge_for_another_adapter_is_refused_in_one_line(tiny_models_dir, shared_dir, landmarker_path, rows,
                                                             tmp_path, capsys):
    other = ExpressionBridge(np.zeros((52, 55)), np.zeros(55), "e" * 64, {}).save(tmp_path / "other.safetensors")
    csv = write_csv(tmp_path / "take.csv", rows)
    assert headless(tiny_models_dir, shared_dir, landmarker_path, csv, tmp_path / "o.mp4", "--bridge", str(other)) != 0
    assert "another Expression Adapter" in one_error_line(capsys)


def test_a_csv_renders_through_the_bridge_with_region_gains(tiny_models_dir, shared_dir, landmarker_path, rows,
                                                            bridge_for_tiny, tmp_path, monkeypatch):
    csv = write_csv(tmp_path / "take.csv", rows)
    seen: dict[int, np.ndarray] = {}
    real_generate = RetargetPipeline.generate

    def spy(self, context, expressions, settings=None, noise=None, frame_indices=None, **kwargs):
        for index, vector in zip(frame_indices, np.asarray(expressions)):
            seen[int(index)] = np.array(vector, copy=True)
        return real_generate(self, context, expressions, settings, noise, frame_indices, **kwargs)

    monkeypatch.setattr(RetargetPipeline, "generate", spy)
    out = tmp_path / "out.mp4"
    assert headless(tiny_models_dir, shared_dir, landmarker_path, csv, out, "--no-smoothing", "--gain", "mouth=1.5",
                    "--batch-size", "2") == 0
    assert out.is_file() and sorted(seen) == list(range(FRAMES))
    gained = rows.copy()
    gained[:, MOUTH] = np.clip(gained[:, MOUTH] * 1.5, 0, 1)
    got = np.stack([seen[i] for i in range(FRAMES)])
    np.testing.assert_allclose(got, bridge_for_tiny(gained), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, bridge_for_tiny(rows), rtol=1e-5, atol=1e-6)  # the mouth gain acted


def test_a_blendshape_expression_file_renders_through_the_bridge(tiny_models_dir, shared_dir, landmarker_path,
                                                                 bridge_for_tiny, tmp_path, monkeypatch):
    import json

    smile = {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "jawOpen": 0.2}
    expression = tmp_path / "smile.json"
    expression.write_text(json.dumps({"kind": "blendshapes52", "values": smile}))
    seen = []
    real_generate = RetargetPipeline.generate

    def spy(self, context, expressions, *args, **kwargs):
        seen.append(np.array(expressions, copy=True))
        return real_generate(self, context, expressions, *args, **kwargs)

    monkeypatch.setattr(RetargetPipeline, "generate", spy)
    out = tmp_path / "smile.png"
    assert main(["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "1",
                 "--device", "cpu", "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"),
                 "--expression", str(expression), "--out", str(out)]) == 0
    full = np.zeros(52, np.float32)
    for name, value in smile.items():
        full[BLENDSHAPE_NAMES.index(name)] = value
    assert out.is_file() and len(seen) == 1
    np.testing.assert_array_equal(seen[0][0], bridge_for_tiny(full))
