"""argparse options generated from knob fields, and knob dataclasses built back from the parsed namespace.

The parser stays a plain argparse.ArgumentParser: subcommands add hand-written options beside the
generated ones. Each option's dest is its field's name (`--no-reference` -> use_reference), its
metavar the flag's (`--smoothing-cutoff SMOOTHING_CUTOFF`), so --help reads as it did when the
options were written by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from retarget.config.knobs import KnobField, knob_fields


def _option(field: KnobField, default) -> tuple[str, dict]:
    k = field.knob
    kwargs: dict = {"dest": field.name, "help": k.help}
    if field.type is bool:
        # `--no-x` switches a default-on knob off; `--x` switches a default-off one on.
        kwargs["action"] = "store_false" if k.flag.startswith("--no-") else "store_true"
        kwargs["default"] = default
        return k.flag, kwargs
    kwargs["metavar"] = k.metavar or (None if k.choices else k.flag.lstrip("-").upper().replace("-", "_"))
    if k.parse is not None:
        kwargs.update(action="append", default=[])
        return k.flag, kwargs
    kwargs["default"] = default
    if k.choices is not None:
        kwargs["choices"] = k.choices
    if field.type in (int, float, Path):
        kwargs["type"] = field.type
    return k.flag, kwargs


def add_knob_options(parser: argparse.ArgumentParser, *classes, only: Iterable[str] | None = None,
                     defaults: dict | None = None, helps: dict | None = None) -> dict[str, argparse._ArgumentGroup]:
    """Add every knob of `classes` that has a flag (or only those named), each under its --help group.

    Groups are created in the order first met; `defaults` overrides a field's default and `helps` its help text
    (by field name), for a tool that uses the knob for one purpose (e.g. --models only for its ArcFace file).
    Returns the groups, so a caller can add hand-written options to them.
    """
    wanted = set(only) if only is not None else None
    groups = getattr(parser, "_knob_groups", {})
    parser._knob_groups = groups
    # A knob without a group of its own goes under its class's CLI_GROUP (e.g. "models"), if the class names one.
    chosen = [(f, f.knob.group or getattr(cls, "CLI_GROUP", None)) for cls in classes for f in knob_fields(cls)
              if f.knob.flag is not None and (wanted is None or f.name in wanted)]
    # Main options first, then each group's in the order groups are first met (the usage line follows too).
    order = {None: 0, **{g: i + 1 for i, g in enumerate(dict.fromkeys(g for _, g in chosen if g))}}
    for field, group in sorted(chosen, key=lambda pair: order[pair[1]]):
        flag, kwargs = _option(field, (defaults or {}).get(field.name, field.default))
        kwargs["help"] = (helps or {}).get(field.name, kwargs["help"])
        if group is not None and group not in groups:
            groups[group] = parser.add_argument_group(group)
        (parser if group is None else groups[group]).add_argument(flag, **kwargs)
    return groups


def from_args(cls, args: argparse.Namespace, base=None, **overrides):
    """An instance of `cls` (or `base` updated) with every knob the namespace has; not validated."""
    values = {}
    for field in knob_fields(cls):
        if field.knob.flag is None or not hasattr(args, field.name):
            continue
        value = getattr(args, field.name)
        values[field.name] = field.knob.parse(value) if field.knob.parse is not None else value
    for field in dataclasses.fields(cls):  # a knob dataclass inside (RenderOptions.video) is filled too
        if dataclasses.is_dataclass(field.default_factory) and knob_fields(field.default_factory):
            values[field.name] = from_args(field.default_factory, args)
    values.update(overrides)
    return replace(base, **values) if base is not None else cls(**values)
