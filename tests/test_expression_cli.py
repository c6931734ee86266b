"""`retarget --headless --expression EXPR.json`: the vector fed to the adapter is the file's; bad files are one line."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from retarget.cli import main
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.pipeline import RetargetPipeline
from tests.test_cli import assert_one_line_error, error_lines, run_cli


@pytest.fixture
def identity(shared_dir):
    return shared_dir / "media" / "identity_hepburn_small.png"


def _write(path, data) -> str:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def _render(models, identity, landmarker, out, *extra):
    """Run the CLI in this process and return (exit code, the expression batches generate() was given)."""
    with mock.patch.object(RetargetPipeline, "generate", autospec=True, side_effect=RetargetPipeline.generate) as spy:
        code = main(["--headless", "--models", str(models), "--identity", str(identity), "--landmarker", str(landmarker),
                     "--out", str(out), "--steps", "2", *extra])
    return code, [np.asarray(call.args[2], dtype=np.float32) for call in spy.call_args_list]


def test_flame_expression_file_is_exactly_the_vector_fed(tmp_path, tiny_models_dir, identity, landmarker_path):
    expr = _write(tmp_path / "e.json", {"kind": "flame55", "values": {"jaw_open": 0.3, "exp_05": -1.25, "eyelid_left": 0.5}})
    out = tmp_path / "o.png"
    code, fed = _render(tiny_models_dir, identity, landmarker_path, out, "--expression", expr)
    assert code == 0
    expected = np.zeros(55, np.float32)
    expected[52], expected[5], expected[50] = 0.3, -1.25, 0.5
    assert len(fed) == 1
    np.testing.assert_array_equal(fed[0], expected[None])
    assert np.asarray(Image.open(out)).shape == (224, 225, 3)  # the whole identity photo (--frame full)


def test_blendshape_expression_file_is_exactly_the_vector_fed(tmp_path, blendshape_models_dir, identity, landmarker_path):
    values = {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.6, "jawOpen": 0.25}
    expr = _write(tmp_path / "e.json", {"kind": "blendshapes52", "values": values})
    code, fed = _render(blendshape_models_dir, identity, landmarker_path, tmp_path / "o.png", "--expression", expr)
    assert code == 0
    expected = np.zeros(52, np.float32)
    for name, value in values.items():
        expected[BLENDSHAPE_NAMES.index(name)] = value
    np.testing.assert_array_equal(fed[0], expected[None])


def test_with_a_driver_photo_the_files_names_override_only_their_values(tmp_path, tiny_models_dir, identity,
                                                                         landmarker_path, shared_dir):
    driver = str(shared_dir / "media" / "expression_exp1_rgba.png")
    code, plain = _render(tiny_models_dir, identity, landmarker_path, tmp_path / "plain.png", "--driver", driver)
    assert code == 0
    expr = _write(tmp_path / "e.json", {"kind": "flame55", "values": {"jaw_open": 0.5, "exp_10": 2.0}})
    code, fed = _render(tiny_models_dir, identity, landmarker_path, tmp_path / "o.png", "--driver", driver, "--expression", expr)
    assert code == 0
    changed = np.flatnonzero(fed[0][0] != plain[0][0])
    assert set(changed.tolist()) <= {10, 52}
    assert fed[0][0][52] == np.float32(0.5) and fed[0][0][10] == np.float32(2.0)


def test_wrong_kind_for_the_loaded_adapter_names_both_kinds(tmp_path, blendshape_models_dir, identity, landmarker_path, capsys):
    expr = _write(tmp_path / "e.json", {"kind": "flame55", "values": {"jaw_open": 0.3}})
    out = tmp_path / "o.png"
    code, fed = _render(blendshape_models_dir, identity, landmarker_path, out, "--expression", expr)
    assert code == 2 and fed == [] and not out.exists()
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "flame55" in lines[0] and "blendshapes52" in lines[0] and str(expr) in lines[0]


@pytest.mark.parametrize("document, extra, fragment", [
    ("{not json", [], "not valid JSON"),
    ({"kind": "flame55", "values": {"smile": 1}}, [], "unknown flame55 name 'smile'"),
    ({"kind": "flame55", "values": {"jaw_sideways": 0.5}}, [], "use -0.2 to 0.2"),
    ({"kind": "flame55", "values": {}}, ["--gain", "jaw=2"], "--gain: mapping options act on a driver's values"),
    ({"kind": "flame55", "values": {}}, ["--driver", "clip.mp4"], "--expression renders a still"),
])
def test_bad_expression_options_exit_2_with_one_line(tmp_path, identity, document, extra, fragment, capsys):
    expr = _write(tmp_path / "e.json", document)
    out = tmp_path / "o.png"
    # checked before any model loads: a models folder that does not exist is never reached
    code = main(["--headless", "--models", str(tmp_path / "no-models"), "--identity", str(identity), "--expression", expr,
                 "--out", str(out), *extra])
    assert code == 2 and not out.exists()
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and fragment in lines[0], lines


def test_command_line_with_random_tiny_writes_a_png(tmp_path, identity, landmarker_path):
    expr = _write(tmp_path / "smile.json", {"kind": "flame55", "values": {"jaw_open": 0.2}})
    out = tmp_path / "o.png"
    result = run_cli(["--headless", "--models", "random:tiny", "--identity", str(identity), "--expression", expr,
                      "--out", str(out), "--steps", "2", "--landmarker", str(landmarker_path)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(out)).shape == (224, 225, 3)  # the whole identity photo (--frame full)
    missing = run_cli(["--headless", "--models", "random:tiny", "--identity", str(identity), "--expression",
                       str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.png")], tmp_path)
    assert missing.returncode == 2
    assert_one_line_error(missing, "nope.json", "no such file")
