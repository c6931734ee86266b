"""Saved settings for knob fields, in any QSettings-like store (value(key, default), setValue, contains).

Keys come from the fields (SECTION/name, or the knob's own key), so a knob added to a dataclass is
saved with no code here. A renamed key lists the old one in `old_keys`: it is read while the new key
is absent, so settings saved by an older version carry over. Values are checked like any other
input: a hand-edited value that is unreadable or out of range is ignored (the current value stays).
"""

from __future__ import annotations

from typing import Any

from retarget.config.knobs import KnobField, check_field, knob_fields
from retarget.errors import RetargetError


def app_fields(*classes) -> list[KnobField]:
    """The knobs the app's settings form shows (those with a label), in the classes' order."""
    return [f for cls in classes for f in knob_fields(cls) if f.knob.label is not None]


def _coerce(field_type, value):
    if field_type is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("true", "1", "false", "0"):
            raise ValueError(value)
        return text in ("true", "1")
    if field_type is int:
        number = float(value)
        if not number.is_integer():
            raise ValueError(value)
        return int(number)
    if field_type is float:
        return float(value)
    return str(value)


def _stored(store, keys: tuple[str, ...]):
    for key in keys:
        if store.contains(key):
            return True, store.value(key)
    return False, None


def _keys(field: KnobField, name: str | None = None) -> tuple[str, ...]:
    keys = (field.store_key, *field.knob.old_keys)
    return tuple(k.format(name) for k in keys) if name is not None else keys


def read_value(store, field: KnobField, fallback: Any, check: bool = True) -> Any:
    """The stored value of one knob (the new key, else an old one), or `fallback` when absent or invalid
    (check=False: any value of the right type, for a widget that offers more than the knob's choices)."""
    if field.type is dict:
        result = dict(fallback)
        for name in field.knob.keys:
            found, raw = _stored(store, _keys(field, name))
            if not found:
                continue
            try:
                value = float(raw)
                check_field(field, {name: value})
            except (TypeError, ValueError, RetargetError):
                continue
            result[name] = value
        return result
    found, raw = _stored(store, _keys(field))
    if not found or (raw is None and field.optional):
        return fallback
    try:
        value = _coerce(field.type, raw)
        if check:
            check_field(field, value)
    except (TypeError, ValueError, OverflowError, RetargetError):
        return fallback
    return value


def write_value(store, field: KnobField, value: Any) -> None:
    if field.type is dict:
        for name in field.knob.keys:
            store.setValue(field.store_key.format(name), float(value.get(name, field.knob.item_default)))
    else:
        store.setValue(field.store_key, value)
