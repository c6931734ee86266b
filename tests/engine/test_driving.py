"""Mapping changes swap the mapper only: perception (MediaPipe, SMIRK) keeps running."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.engine.driving import DriverAnalyzer
from retarget.errors import RetargetError
from retarget.config.mapping import MappingSettings
from retarget.media.frame_source import Frame


def csv_frame(index: int, value: float) -> Frame:
    return Frame(index, index / 25.0, blendshapes=np.full(52, value, np.float32))


def test_set_mapping_swaps_the_mapper_and_keeps_perception(tmp_path):
    # A blendshape analyzer driven by CSV frames: the landmarker is never needed, only its identity checked.
    analyzer = DriverAnalyzer("blendshapes52", tmp_path / "unused.task", MappingSettings(smoothing=False))
    landmarker = analyzer._landmarker = object()  # stands for the running MediaPipe graph
    before = analyzer(csv_frame(0, 0.4)).expression
    first = analyzer.mapper
    analyzer.set_mapping(MappingSettings(smoothing=False, intensity=0.5))
    assert analyzer.mapper is not first and analyzer._landmarker is landmarker
    assert analyzer.mapping.intensity == 0.5
    after = analyzer(csv_frame(1, 0.4)).expression
    assert np.allclose(after[1:], 0.5 * before[1:])  # the next frame uses the new gains


def test_set_mapping_keeps_the_relative_neutral_while_mirroring_is_unchanged(tmp_path):
    analyzer = DriverAnalyzer("blendshapes52", tmp_path / "unused.task", MappingSettings(relative=True, smoothing=False))
    analyzer.set_neutral_from(np.full(52, 0.2, np.float32))
    analyzer.set_mapping(MappingSettings(relative=True, smoothing=False, intensity=0.5))
    assert np.allclose(analyzer.mapper.driver_neutral, 0.2)
    analyzer.set_mapping(MappingSettings(relative=True, smoothing=False, mirror=True))
    assert analyzer.mapper.driver_neutral is None  # held in the other (mirrored) space: set it again


@pytest.mark.parametrize("settings, message", [
    (dict(intensity=-1.0), "--intensity"),
    (dict(min_cutoff=0.0), "--smoothing-cutoff"),
    (dict(gains={"jaw": -1.0}), "--gain jaw"),
    (dict(gains={"lips": 2.0}), "unknown gain 'lips'"),
])
def test_set_mapping_refuses_bad_values_like_a_new_analyzer_and_keeps_the_old_mapper(tmp_path, settings, message):
    with pytest.raises(RetargetError) as fresh:
        DriverAnalyzer("blendshapes52", tmp_path / "unused.task", MappingSettings(**settings))
    analyzer = DriverAnalyzer("blendshapes52", tmp_path / "unused.task")
    mapper = analyzer.mapper
    with pytest.raises(RetargetError, match=message) as live:
        analyzer.set_mapping(MappingSettings(**settings))
    assert str(live.value) == str(fresh.value) and "\n" not in str(live.value)
    assert analyzer.mapper is mapper
