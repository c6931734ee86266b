"""Named expressions: the controls of both adapter kinds, the JSON format, presets that round-trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retarget.errors import BadInputError, OutputError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.expression.named import BLENDSHAPES, FLAME, space_for
from retarget.expression.presets import (
    BUILTIN_PRESETS, ComposedExpression, builtin_preset, read_expression, save_preset, user_presets, user_presets_dir,
    write_expression,
)


def test_blendshape_space_is_mediapipes_order_grouped_by_region_with_symmetric_pairs():
    space = space_for("blendshapes52")
    assert space.names == BLENDSHAPE_NAMES
    assert space.control("eyeBlinkLeft").partner == "eyeBlinkRight"
    assert space.control("mouthSmileRight").partner == "mouthSmileLeft"
    # one movement in two directions is not a pair: linking would cancel it out
    assert space.control("jawLeft").partner is None and space.control("mouthLeft").partner is None
    regions = space.by_region()
    assert [c.name for c in regions["eyes"]][:2] == ["eyeBlinkLeft", "eyeBlinkRight"]
    assert sum(len(v) for v in regions.values()) == 52
    assert space_for("blendshapes51") is space


def test_flame_space_follows_the_published_order():
    space = space_for("flame55")
    assert space.names[:50] == tuple(f"exp_{i:02d}" for i in range(50))
    assert space.names[50:] == ("eyelid_left", "eyelid_right", "jaw_open", "jaw_sideways", "jaw_tilt")
    vector = space.vector_for("flame55", {"jaw_open": 0.25, "exp_07": -1.5})
    expected = np.zeros(55, np.float32)
    expected[52], expected[7] = 0.25, -1.5
    np.testing.assert_array_equal(vector, expected)


def test_blendshapes51_adapter_gets_the_names_without_neutral():
    space = space_for("blendshapes51")
    vector = space.vector_for("blendshapes51", {"jawOpen": 0.5, "_neutral": 0.9})
    assert vector.shape == (51,) and vector[BLENDSHAPE_NAMES.index("jawOpen") - 1] == 0.5
    assert np.count_nonzero(vector) == 1


def test_start_values_are_kept_where_no_name_overrides_them():
    space = space_for("blendshapes52")
    start = np.linspace(0, 1, 52, dtype=np.float32)
    vector = space.vector_for("blendshapes52", {"jawOpen": 0.0}, start=start)
    changed = np.flatnonzero(vector != start)
    assert changed.tolist() == [BLENDSHAPE_NAMES.index("jawOpen")]


def test_wrong_adapter_kind_names_both_kinds():
    with pytest.raises(BadInputError, match="flame55 values, but the loaded Expression Adapter takes blendshapes52"):
        space_for("flame55").vector_for("blendshapes52", {})


@pytest.mark.parametrize("document, fragment", [
    ('{"kind": "flame55", "values": {"mouthSmileLeft": 1}}', "unknown flame55 name 'mouthSmileLeft'"),
    ('{"kind": "blendshapes52", "values": {"jawOpen": 1.5}}', "jawOpen = 1.5 is out of range; use 0 to 1"),
    ('{"kind": "flame55", "values": {"exp_03": NaN}}', "not valid JSON (NaN is not a number)"),
    ('{"kind": "flame55", "values": {"exp_03": 1e999}}', "exp_03 is inf; values must be finite numbers from -3 to 3"),
    ('{"kind": "flame55", "values": {"jaw_open": "wide"}}', "jaw_open must be a number from 0 to 0.6"),
    ('{"kind": "flame55", "values": {"jaw_open": true}}', "jaw_open must be a number"),
    ('{"kind": "arkit", "values": {}}', '"kind" must be "blendshapes52" or "flame55"'),
    ('{"kind": "flame55", "value": {}}', "unknown key 'value'"),
    ('[1, 2]', "expected an object"),
    ('{"kind": "flame55", ', "not valid JSON"),
])
def test_bad_expression_files_are_one_line_naming_the_file(tmp_path, document, fragment):
    path = tmp_path / "e.json"
    path.write_text(document)
    with pytest.raises(BadInputError) as info:
        read_expression(path)
    message = str(info.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_saved_preset_round_trips_in_the_documented_format(tmp_path):
    original = ComposedExpression(FLAME, {"exp_00": 0.123456789, "eyelid_right": 1.0, "jaw_tilt": -0.2, "exp_49": 0.0})
    path = save_preset(tmp_path, "my look", original)
    assert path == tmp_path / "my look.json"
    data = json.loads(path.read_text())
    assert data == {"kind": "flame55", "values": {"exp_00": 0.123456789, "eyelid_right": 1.0, "jaw_tilt": -0.2}}
    loaded = read_expression(path)
    space = space_for(FLAME)
    np.testing.assert_array_equal(space.full_vector(loaded.values), space.full_vector(original.values))
    assert user_presets(tmp_path, FLAME)[0] == {"my look": path}
    assert user_presets(tmp_path, BLENDSHAPES)[0] == {}


def test_presets_are_never_overwritten_silently_and_builtin_names_are_reserved(tmp_path):
    first = ComposedExpression(BLENDSHAPES, {"jawOpen": 0.3})
    path = save_preset(tmp_path, "open", first)
    with pytest.raises(OutputError, match="already exists"):
        save_preset(tmp_path, "open", ComposedExpression(BLENDSHAPES, {"jawOpen": 0.9}))
    assert read_expression(path).values == {"jawOpen": 0.3}
    save_preset(tmp_path, "open", ComposedExpression(BLENDSHAPES, {"jawOpen": 0.9}), replace=True)
    assert read_expression(path).values == {"jawOpen": 0.9}
    with pytest.raises(BadInputError, match="built-in"):
        save_preset(tmp_path, "Smile", first)
    with pytest.raises(BadInputError, match="preset name"):
        save_preset(tmp_path, "../escape", first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["open.json"]  # no temporary files left


def test_an_unreadable_preset_is_reported_and_skipped(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    write_expression(tmp_path / "ok.json", ComposedExpression(BLENDSHAPES, {}))
    found, problems = user_presets(tmp_path, BLENDSHAPES)
    assert list(found) == ["ok"] and len(problems) == 1 and "broken.json" in problems[0]


def test_builtin_presets_are_valid_and_use_only_named_values():
    for kind, presets in BUILTIN_PRESETS.items():
        for name in presets:
            expression = builtin_preset(kind, name)
            expression.space.check_values(expression.values, name)
    assert all(not name.startswith("exp_") for values in BUILTIN_PRESETS[FLAME].values() for name in values)
    assert builtin_preset(BLENDSHAPES, "neutral").values == {}


def test_user_presets_folder_follows_xdg_config_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert user_presets_dir() == tmp_path / "retarget" / "expressions"
