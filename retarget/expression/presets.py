"""Expression files and presets: `{"kind": "blendshapes52" | "flame55", "values": {name: value, ...}}`.

The same small JSON the app saves and `retarget --headless --expression EXPR.json` reads. Names
missing from "values" are neutral (0). The kinds are the adapter kinds the rest of the project
uses (RetargetPipeline.expression_kind, training's --exp-kind); a blendshapes52 file also drives a
blendshapes51 adapter (which does not take `_neutral`).

Presets: a few built in (stated from named values only: nothing is claimed about the 50 FLAME
coefficients), and the user's own, one file each in `user_presets_dir()`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from retarget.errors import BadInputError, OutputError
from retarget.expression.named import BLENDSHAPES, FLAME, SPACES, ExpressionSpace

FORMAT_KEYS = ("kind", "values")
_PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")


@dataclass
class ComposedExpression:
    """Named values in one naming space (validated); names left out are neutral."""

    kind: str
    values: dict[str, float] = field(default_factory=dict)

    @property
    def space(self) -> ExpressionSpace:
        return SPACES[self.kind]

    def to_json(self) -> dict:
        # Only values that differ from neutral: a preset file stays short and readable.
        return {"kind": self.kind, "values": {n: float(v) for n, v in self.values.items() if float(v) != 0.0}}


def parse_expression(data, source: str) -> ComposedExpression:
    """A parsed JSON document -> a validated ComposedExpression (one-line BadInputError naming `source`)."""
    if not isinstance(data, dict):
        raise BadInputError(f'{source}: expected an object {{"kind": "{BLENDSHAPES}" or "{FLAME}", "values": {{name: value}}}}')
    unknown = sorted(set(data) - set(FORMAT_KEYS))
    if unknown:
        raise BadInputError(f"{source}: unknown key '{unknown[0]}'; an expression file has only \"kind\" and \"values\"")
    kind = data.get("kind")
    if kind not in SPACES:
        raise BadInputError(f"{source}: \"kind\" must be \"{BLENDSHAPES}\" or \"{FLAME}\" (got {kind!r})")
    space = SPACES[kind]
    return ComposedExpression(kind, space.check_values(data.get("values", {}), source))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def read_expression(path) -> ComposedExpression:
    """An expression JSON file -> ComposedExpression; any problem is one line naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadInputError(f"{path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    try:
        # NaN/Infinity are not JSON; Python's reader would accept them, so they are refused here.
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadInputError(f"{path}: its JSON is nested too deeply to be an expression; see README 'Compose an expression'") from None
    except ValueError as err:
        raise BadInputError(f"{path}: not valid JSON ({str(err).splitlines()[0]}); see README 'Compose an expression'") from None
    return parse_expression(data, str(path))


def write_expression(path, expression: ComposedExpression, replace: bool = False) -> Path:
    """Write the file atomically; an existing file is replaced only when asked (never silently)."""
    from retarget.outputs import write_text

    path = Path(path)
    if path.exists() and not replace:
        raise OutputError(f"{path} already exists; choose another name")
    expression.space.check_values(expression.values, str(path))
    return write_text(path, json.dumps(expression.to_json(), indent=2) + "\n")


# ------------------------------------------------------------------ presets
def _both(stem: str, value: float) -> dict[str, float]:
    """A symmetric pair: the same value on the left and the right."""
    return {f"{stem}Left": value, f"{stem}Right": value}


BUILTIN_PRESETS: dict[str, dict[str, dict[str, float]]] = {
    BLENDSHAPES: {
        "neutral": {},
        "smile": {**_both("mouthSmile", 0.8), **_both("cheekSquint", 0.4), **_both("eyeSquint", 0.2)},
        "surprise": {"browInnerUp": 0.8, **_both("browOuterUp", 0.7), **_both("eyeWide", 0.7), "jawOpen": 0.45},
        "sad": {"browInnerUp": 0.7, **_both("mouthFrown", 0.6), "mouthShrugLower": 0.3},
        "angry": {**_both("browDown", 0.8), **_both("eyeSquint", 0.4), **_both("noseSneer", 0.5), **_both("mouthPress", 0.4)},
        "mouth open": {"jawOpen": 0.7},
        "eyes closed": _both("eyeBlink", 1.0),
        "wink (left eye)": {"eyeBlinkLeft": 1.0, "mouthSmileLeft": 0.4},
    },
    # The 50 FLAME coefficients have no stated meaning, so presets use only the named values.
    FLAME: {
        "neutral": {},
        "jaw open": {"jaw_open": 0.3},
        "eyes closed": {"eyelid_left": 1.0, "eyelid_right": 1.0},
        "wink (left eyelid)": {"eyelid_left": 1.0},
    },
}


def builtin_preset(kind: str, name: str) -> ComposedExpression:
    return ComposedExpression(kind, dict(BUILTIN_PRESETS[kind][name]))


def user_presets_dir() -> Path:
    """~/.config/retarget/expressions (or under $XDG_CONFIG_HOME)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "retarget" / "expressions"


def preset_path(folder, name: str, kind: str) -> Path:
    """Where the user's preset `name` lives; a name that is not a plain file name, or a built-in's, is refused."""
    name = name.strip()
    if not _PRESET_NAME.match(name):
        raise BadInputError(f"preset name {name!r}: use letters, digits, spaces, - and _ (up to 64, starting with a letter or digit)")
    if name.lower() in {n.lower() for n in BUILTIN_PRESETS[kind]}:
        raise BadInputError(f"'{name}' is a built-in preset; choose another name")
    return Path(folder) / f"{name}.json"


def save_preset(folder, name: str, expression: ComposedExpression, replace: bool = False) -> Path:
    return write_expression(preset_path(folder, name, expression.kind), expression, replace=replace)


def user_presets(folder, kind: str) -> tuple[dict[str, Path], list[str]]:
    """The user's presets of this kind: ({name: path}, [one line per unreadable file, skipped])."""
    found, problems = {}, []
    folder = Path(folder)
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue  # a temporary file of a write in progress
        try:
            expression = read_expression(path)
        except BadInputError as err:
            problems.append(str(err))
            continue
        if expression.kind == kind:
            found[path.stem] = path
    return found, problems
