"""The 52 blendshape names and their left/right mirror."""

from __future__ import annotations

import numpy as np

from retarget.names.blendshapes import BLENDSHAPE_NAMES, MIRROR_PERMUTATION, NUM_BLENDSHAPES, mirror_blendshapes


def test_mirror_permutation_swaps_pairs_and_is_an_involution():
    assert len(BLENDSHAPE_NAMES) == NUM_BLENDSHAPES == 52 and BLENDSHAPE_NAMES[0] == "_neutral"
    assert sorted(MIRROR_PERMUTATION) == list(range(52))
    assert (MIRROR_PERMUTATION[MIRROR_PERMUTATION] == np.arange(52)).all()
    values = np.arange(52, dtype=np.float32)
    mirrored = mirror_blendshapes(values)
    name = BLENDSHAPE_NAMES.index
    assert mirrored[name("eyeBlinkLeft")] == name("eyeBlinkRight")
    assert mirrored[name("mouthLeft")] == name("mouthRight")
    assert mirrored[name("jawRight")] == name("jawLeft")
    assert mirrored[name("jawOpen")] == name("jawOpen")
    batch = np.stack([values, values * 2])
    assert np.array_equal(mirror_blendshapes(batch), np.stack([mirrored, mirrored * 2]))
