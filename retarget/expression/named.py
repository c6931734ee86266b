"""Named expression values: the controls a person sets by hand, for either kind of Expression Adapter.

Two naming spaces, one per adapter family:
- `blendshapes52`: MediaPipe's 52 ARKit-style names (BLENDSHAPE_NAMES), each 0..1, grouped by the
  regions of retarget.expression.mapping. Left/Right pairs of the same action on both sides of the
  face are linkable; jawLeft/jawRight and mouthLeft/mouthRight are one movement in two directions,
  so they are not linked (moving both would cancel out). An adapter trained without `_neutral`
  (blendshapes51) takes the same names minus `_neutral`.
- `flame55`: the published adapter's input, in its order: 50 FLAME expression coefficients
  (`exp_00`..`exp_49`: global components with no per-name meaning that we can state without the
  FLAME model, so the app renders them to show what each does), 2 eyelid values (SMIRK's first
  drives FLAME's left-eyelid shape, its second the right) and the 3 jaw pose values (radians about
  FLAME's x axis = opening, y = sideways, z = tilt).

Ranges: SMIRK's own output ranges where it has them (eyelids 0..1, jaw opening >= 0, jaw sideways
and tilt +-0.2); the upper limit of the jaw opening and the +-3 of the coefficients are ours (FLAME
coefficients are in standard deviations of its expression space, where real faces rarely pass 3).
A value left out is neutral (0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from retarget.errors import BadInputError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.config.mapping import REGIONS

BLENDSHAPES = "blendshapes52"
FLAME = "flame55"
# Adapter kind (RetargetPipeline.expression_kind) -> the naming space its values are set in.
SPACE_OF_ADAPTER = {"blendshapes52": BLENDSHAPES, "blendshapes51": BLENDSHAPES, "flame55": FLAME}
NUM_COEFFICIENTS = 50
COEFFICIENT_LIMIT = 3.0
JAW_OPEN_LIMIT = 0.6
# Opposite directions of one movement, not the two sides of the face: never linked.
NOT_LINKED = {"jawLeft", "jawRight", "mouthLeft", "mouthRight"}


@dataclass(frozen=True)
class Control:
    name: str
    index: int  # position in the naming space's full vector (52 or 55)
    low: float
    high: float
    region: str
    partner: str | None = None  # the same action on the other side of the face (linkable)
    help: str = ""

    def check(self, value, source: str) -> float:
        """The value as a float, or a one-line BadInputError naming the control, its range and `source`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInputError(f"{source}: {self.name} must be a number from {self.low:g} to {self.high:g} (got {value!r})")
        number = float(value)
        if not math.isfinite(number):
            raise BadInputError(f"{source}: {self.name} is {value}; values must be finite numbers from "
                                f"{self.low:g} to {self.high:g}")
        if not self.low <= number <= self.high:
            raise BadInputError(f"{source}: {self.name} = {value:g} is out of range; use {self.low:g} to {self.high:g}")
        return number


class ExpressionSpace:
    """The named controls of one naming space, and conversions to and from the adapter's vector."""

    def __init__(self, kind: str, controls: list[Control], regions: tuple[str, ...]):
        self.kind = kind
        self.controls = tuple(controls)
        self.regions = regions
        self._by_name = {c.name: c for c in self.controls}
        self.size = len(self.controls)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.controls)

    def control(self, name: str) -> Control:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def by_region(self) -> dict[str, list[Control]]:
        return {region: [c for c in self.controls if c.region == region] for region in self.regions}

    def check_values(self, values: Mapping, source: str) -> dict[str, float]:
        """Validated {name: value}: an unknown name, a non-number, NaN/inf or an out-of-range value is one line."""
        if not isinstance(values, Mapping):
            raise BadInputError(f"{source}: \"values\" must be an object of name: number")
        checked = {}
        for name, value in values.items():
            if name not in self._by_name:
                example = ", ".join(self.names[i] for i in (1, 2, -1)) if self.kind == BLENDSHAPES else "exp_00..exp_49, eyelid_left, jaw_open"
                raise BadInputError(f"{source}: unknown {self.kind} name '{name}'; use the names the app shows "
                                    f"(e.g. {example})")
            checked[name] = self._by_name[name].check(value, source)
        return checked

    def full_vector(self, values: Mapping[str, float]) -> np.ndarray:
        """All controls in this space's order (52 or 55), missing names at 0."""
        vector = np.zeros(self.size, dtype=np.float32)
        for name, value in values.items():
            vector[self._by_name[name].index] = value
        return vector

    def vector_for(self, adapter_kind: str | None, values: Mapping[str, float], start: np.ndarray | None = None) -> np.ndarray:
        """The vector the loaded adapter takes: `start` (the adapter's own vector, e.g. a driver photo's) or
        neutral, with the named values replacing theirs."""
        self.check_adapter(adapter_kind)
        full = self.full_vector({}) if start is None else self.full_from_adapter(adapter_kind, start)
        for name, value in values.items():
            full[self._by_name[name].index] = value
        return full[1:] if adapter_kind == "blendshapes51" else full

    def full_from_adapter(self, adapter_kind: str, vector) -> np.ndarray:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if adapter_kind == "blendshapes51":
            v = np.concatenate([np.zeros(1, np.float32), v])  # `_neutral`, which this adapter does not take
        if v.size != self.size:
            raise ValueError(f"a {adapter_kind} vector has {self.size} values, got {v.size}")
        return v.copy()

    def values_from_adapter(self, adapter_kind: str, vector) -> dict[str, float]:
        """{name: value} of every control, from the adapter's own vector."""
        full = self.full_from_adapter(adapter_kind, vector)
        return {c.name: float(full[c.index]) for c in self.controls}

    def check_adapter(self, adapter_kind: str | None, source: str = "the expression") -> None:
        if adapter_kind is None:
            raise BadInputError("these models have no Expression Adapter, so an expression cannot be set")
        if SPACE_OF_ADAPTER.get(adapter_kind) != self.kind:
            raise BadInputError(f"{source} holds {self.kind} values, but the loaded Expression Adapter takes "
                                f"{adapter_kind}; use an expression saved for a {SPACE_OF_ADAPTER.get(adapter_kind, adapter_kind)} "
                                f"adapter (the app saves one for the loaded adapter)")


def _blendshape_region(name: str) -> str:
    for region, names in REGIONS.items():
        if name in names:
            return region
    return "other"  # `_neutral`: MediaPipe's neutral score, which blendshape adapters also take


def _blendshape_space() -> ExpressionSpace:
    controls = []
    for index, name in enumerate(BLENDSHAPE_NAMES):
        partner = None
        if name not in NOT_LINKED:
            for side, other in (("Left", "Right"), ("Right", "Left")):
                if name.endswith(side):
                    partner = name[: -len(side)] + other
        help_text = ("MediaPipe's neutral score (not a facial action); blendshapes52 adapters take it, blendshapes51 ones do not"
                     if name == "_neutral" else f"ARKit blendshape {name}, 0 = not at all, 1 = fully")
        controls.append(Control(name, index, 0.0, 1.0, _blendshape_region(name), partner, help_text))
    return ExpressionSpace(BLENDSHAPES, controls, (*REGIONS, "other"))


def _flame_space() -> ExpressionSpace:
    unknown = "a FLAME expression coefficient: global, so what it does is shown by rendering it (the thumbnail button)"
    controls = [Control(f"exp_{i:02d}", i, -COEFFICIENT_LIMIT, COEFFICIENT_LIMIT, "expression", None, unknown)
                for i in range(NUM_COEFFICIENTS)]
    controls += [
        Control("eyelid_left", 50, 0.0, 1.0, "eyes", "eyelid_right", "SMIRK's first eyelid value (FLAME's left eyelid): 0 open, 1 closed"),
        Control("eyelid_right", 51, 0.0, 1.0, "eyes", "eyelid_left", "SMIRK's second eyelid value (FLAME's right eyelid): 0 open, 1 closed"),
        Control("jaw_open", 52, 0.0, JAW_OPEN_LIMIT, "jaw", None, "jaw opening: FLAME jaw rotation about x, radians (SMIRK: >= 0)"),
        Control("jaw_sideways", 53, -0.2, 0.2, "jaw", None, "jaw sideways: FLAME jaw rotation about y, radians (SMIRK: +-0.2)"),
        Control("jaw_tilt", 54, -0.2, 0.2, "jaw", None, "jaw tilt: FLAME jaw rotation about z, radians (SMIRK: +-0.2)"),
    ]
    return ExpressionSpace(FLAME, controls, ("eyes", "jaw", "expression"))


SPACES = {BLENDSHAPES: _blendshape_space(), FLAME: _flame_space()}


def space_for(adapter_kind: str | None) -> ExpressionSpace:
    """The naming space of an adapter kind (RetargetPipeline.expression_kind), or of a file kind."""
    if adapter_kind in SPACES:
        return SPACES[adapter_kind]
    if adapter_kind in SPACE_OF_ADAPTER:
        return SPACES[SPACE_OF_ADAPTER[adapter_kind]]
    raise BadInputError("these models have no Expression Adapter, so an expression cannot be set"
                        if adapter_kind is None else f"unknown expression kind {adapter_kind!r}; use {' or '.join(SPACES)}")
