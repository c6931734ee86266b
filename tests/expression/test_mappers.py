"""make_mapper: the adapter's expression format picks the mapper, with the settings validated."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import RetargetError
from retarget.expression.flame import FlameMapper
from retarget.expression.mappers import make_mapper
from retarget.config.mapping import MappingSettings
from retarget.expression.mapping import ExpressionMapper


def test_make_mapper_picks_the_adapters_format_and_validates():
    assert isinstance(make_mapper("blendshapes52"), ExpressionMapper)
    assert isinstance(make_mapper("flame55", MappingSettings(), identity_flame=np.zeros(55)), FlameMapper)
    with pytest.raises(RetargetError, match="--intensity"):
        make_mapper("flame55", MappingSettings(intensity=-1.0))
