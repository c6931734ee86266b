"""A knob: everything about one setting, held in its dataclass field's metadata.

A field declared with `knob(default, flag=..., help=..., low=..., label=...)` carries its default,
range or choices, help text, command-line flag, app label and saved-settings key in one place. Three
small readers use it: `validate_knobs` (one-line RetargetError messages), `retarget.config.cli_options`
(argparse options) and `retarget.config.store` (saved settings); the app's settings form
(gui/settings_panel.py) builds its widgets from the same fields.

Why a small generator of our own (knobs, cli_options and store: about 300 lines) rather than tyro or
simple-parsing: those derive each flag from the field name and write their own help (tyro turns
`use_reference: bool = True` into `--use-reference, --no-use-reference` with `(default: True)` in a
boxed layout), so keeping `retarget --help` and today's flags (`--no-reference`, `--smoothing-cutoff`
for min_cutoff, the repeatable `--gain NAME=VALUE`) would mean overriding nearly every field; neither
knows app labels, spin-box ranges or saved-settings keys; and either would be a new dependency. Ours
keeps every existing option's flag, meaning, default, help text and metavar, and leaves a plain
argparse parser, so a hand-written option can still be added beside the generated ones.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import MISSING, dataclass
from numbers import Integral
from typing import Any, Callable

KNOB = "knob"  # the metadata key


@dataclass(frozen=True)
class Knob:
    help: str = ""
    flag: str | None = None  # the command-line flag; None: not a command-line option
    group: str | None = None  # the --help section it is listed under; None: the main one
    metavar: str | None = None
    reads: bool = False  # names a file or folder the job reads: no output may be, hold or lie inside it
    # Validation (the command line, the app and the library all go through validate_knobs)
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself excluded
    choices: tuple | None = None
    check: Callable[[str, Any], None] | None = None  # extra check(name, value) raising RetargetError
    # A repeatable option whose strings become the field's value (e.g. --gain NAME=VALUE -> dict)
    parse: Callable[[list[str]], Any] | None = None
    # The app's settings form: a label puts the knob there; the range and step are the widget's
    label: str | None = None
    tooltip: str | Callable[[str], str] | None = None  # default: help; a dict knob's may take the name
    gui_range: tuple[float, float] | None = None  # default: (low, high)
    step: float | None = None
    decimals: int = 2
    gui_pair: str | None = None  # a check box that sits on the row of (and enables) this other knob
    gui_beside: str | None = None  # sits after this other knob's widget, on its row (a label first unless a check box)
    keys: tuple[str, ...] = ()  # a dict knob: the names the app offers, one widget each
    item_default: Any = None  # a dict knob: the value of a name that is not set
    # Saved settings: the key (default SECTION/name; "{}" is each name of a dict knob) and older keys
    key: str | None = None
    old_keys: tuple[str, ...] = ()


def knob(default: Any = MISSING, *, default_factory: Any = MISSING, **metadata) -> Any:
    """A dataclass field that carries its Knob (see Knob for the keywords)."""
    kwargs = {"metadata": {KNOB: Knob(**metadata)}}
    if default_factory is not MISSING:
        kwargs["default_factory"] = default_factory
    else:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


@dataclass(frozen=True)
class KnobField:
    """One field of a knob dataclass: its name, value type (Optional unwrapped), default and Knob."""

    name: str
    type: type
    optional: bool
    default: Any
    knob: Knob
    owner: type

    @property
    def display_name(self) -> str:
        return self.knob.flag or self.name

    @property
    def store_key(self) -> str:
        if self.knob.key:
            return self.knob.key
        section = getattr(self.owner, "SECTION", "")
        return f"{section}/{self.name}" if section else self.name


def _unwrap(annotation) -> tuple[type, bool]:
    args = typing.get_args(annotation)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else object), True
    origin = typing.get_origin(annotation)
    return (origin or annotation), False


@functools.lru_cache(maxsize=None)  # read on every validate(); a class's fields never change
def knob_fields(cls) -> tuple[KnobField, ...]:
    """The fields of `cls` that are knobs, in declaration order."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(KNOB)
        if meta is None:
            continue
        kind, optional = _unwrap(hints[f.name])
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else None)
        found.append(KnobField(f.name, kind, optional, default, meta, cls))
    return tuple(found)


def check_number(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = False) -> None:
    """A finite number within [low, high] (low excluded when low_open); NaN fails every check, unlike `<`."""
    from retarget.errors import RetargetError

    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RetargetError(f"{name} must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise RetargetError(f"{name} must be a finite number (got {value})")
    if low is not None and (number <= low if low_open else number < low):
        raise RetargetError(f"{name} must be {'more than' if low_open else 'at least'} {low:g} (got {value})")
    if high is not None and number > high:
        raise RetargetError(f"{name} must be at most {high:g} (got {value})")


def check_whole(name: str, value, *, low: int | None = None, high: int | None = None) -> None:
    """A whole number (not a bool) within [low, high]."""
    from retarget.errors import RetargetError

    if isinstance(value, bool) or not isinstance(value, Integral):
        raise RetargetError(f"{name} must be a whole number (got {value!r})")
    if low is not None and value < low:
        raise RetargetError(f"{name} must be {'0 or more' if low == 0 else f'at least {low:g}'} (got {value})")
    if high is not None and value > high:
        raise RetargetError(f"{name} must be at most {high:g} (got {value})")


def check_field(field: KnobField, value) -> None:
    """One knob's value against its type, range and choices; RetargetError names its flag."""
    from retarget.errors import RetargetError

    k, name = field.knob, field.display_name
    if value is None and field.optional:
        return
    if k.choices is not None and value not in k.choices:
        raise RetargetError(f"{name} must be one of {', '.join(map(str, k.choices))} (got {value!r})")
    if field.type is int:
        check_whole(name, value, low=k.low, high=k.high)
    elif field.type is float:
        check_number(name, value, low=k.low, high=k.high, low_open=k.low_open)
    if k.check is not None:
        k.check(name, value)


def validate_knobs(obj) -> None:
    """Every knob of a knob dataclass instance, in field order."""
    for field in knob_fields(type(obj)):
        check_field(field, getattr(obj, field.name))
