"""The expression bridge: MediaPipe's 52 blendshapes -> the 55 FLAME values of the published adapter.

The only published Expression Adapter speaks FLAME-55 (SMIRK's output), while everything the user
touches speaks blendshapes (region gains, named sliders and presets, CSV and Live Link Face
drivers). A bridge is a small map fitted on the user's machine for one adapter file (identified by
its SHA-256, so a bridge fitted for another adapter is never used silently): ridge regression
y = x @ W + b on the 52 values, then SMIRK's own output clamps. It is stored as safetensors
(`weight` (52, 55), `bias` (55,)) with its fit report as JSON in the file's metadata.

Where the loader looks (first hit wins): an explicit path; `MODELS/bridge/<sha256[:16]>.safetensors`
beside a local models folder (so a bridge can ship with the weights); our cache
`~/.cache/retarget/bridges/<sha256[:16]>.safetensors` (where `retarget bridge fit` writes by default).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError
from retarget.names.blendshapes import NUM_BLENDSHAPES
from retarget.expression.flame import FLAME_GROUPS, NUM_FLAME

FORMAT = "retarget-expression-bridge/1"
BRIDGE_FOLDER = "bridge"  # inside a models folder
CACHE_FOLDER = "bridges"  # inside ~/.cache/retarget
FIT_COMMAND = "retarget bridge fit --models MODELS (--videos VIDEO ... | --renders N)"

_hash_memo: dict[tuple, str] = {}
_hash_lock = threading.Lock()


def adapter_sha256(path) -> str:
    """SHA-256 of an adapter file's bytes (memoised per process by path, size, mtime, inode and ctime)."""
    from retarget.cache import file_sha256

    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    with _hash_lock:
        if key in _hash_memo:
            return _hash_memo[key]
    digest = file_sha256(path)
    with _hash_lock:
        _hash_memo[key] = digest
    return digest


def bridge_file_name(sha256: str) -> str:
    return f"{sha256[:16]}.safetensors"


def cache_bridge_path(sha256: str) -> Path:
    """Where `retarget bridge fit` writes by default (and the loader always looks)."""
    from retarget.cache import user_cache_dir

    return user_cache_dir() / CACHE_FOLDER / bridge_file_name(sha256)


def models_root_of(adapter_path) -> Path | None:
    """The models folder that holds MODELS/exp_adapter/exp_adapter.bin, if the adapter sits in that layout."""
    adapter_path = Path(adapter_path)
    if adapter_path.parent.name == "exp_adapter":
        return adapter_path.parent.parent
    return None


def candidate_paths(adapter_path, sha256: str | None = None) -> list[Path]:
    """Every place a bridge for this adapter file may be, in the order the loader tries them."""
    sha256 = sha256 or adapter_sha256(adapter_path)
    places = []
    root = models_root_of(adapter_path)
    if root is not None:
        places.append(root / BRIDGE_FOLDER / bridge_file_name(sha256))
    places.append(cache_bridge_path(sha256))
    return places


@dataclass
class ExpressionBridge:
    """A fitted blendshapes -> FLAME-55 map; calling it maps (..., 52) to (..., 55) float32."""

    weight: np.ndarray  # (52, 55)
    bias: np.ndarray  # (55,)
    adapter_sha256: str
    # The fit report: source ("videos" / "renders" / ...), samples, held_out, r2 and mae per output
    # group (expression, eyes, jaw, all), fitted (ISO time), and free notes. JSON-serialisable.
    report: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight, dtype=np.float32)
        self.bias = np.asarray(self.bias, dtype=np.float32).reshape(-1)
        if self.weight.shape != (NUM_BLENDSHAPES, NUM_FLAME) or self.bias.shape != (NUM_FLAME,):
            raise ValueError(f"a bridge maps {NUM_BLENDSHAPES} -> {NUM_FLAME}; got weight {self.weight.shape}, bias {self.bias.shape}")

    def __call__(self, blendshapes) -> np.ndarray:
        values = np.asarray(blendshapes, dtype=np.float32)
        if values.shape[-1] != NUM_BLENDSHAPES:
            raise ValueError(f"the bridge takes {NUM_BLENDSHAPES} blendshapes on the last axis, got shape {values.shape}")
        flame = values @ self.weight + self.bias
        # SMIRK's own output ranges (retarget.expression.flame.clamp_to_smirk_ranges), on the last axis.
        flame[..., 50:52] = np.clip(flame[..., 50:52], 0.0, 1.0)
        flame[..., 52] = np.maximum(flame[..., 52], 0.0)
        flame[..., 53:55] = np.clip(flame[..., 53:55], -0.2, 0.2)
        return flame.astype(np.float32)

    def save(self, path) -> Path:
        """Write atomically (never over a file that is not a bridge: the caller checks the target)."""
        from safetensors.numpy import save_file

        from retarget.outputs import atomic_write

        metadata = {"format": FORMAT, "adapter_sha256": self.adapter_sha256, "report": json.dumps(self.report)}
        tensors = {"weight": np.ascontiguousarray(self.weight), "bias": np.ascontiguousarray(self.bias)}
        return atomic_write(Path(path), lambda temp: save_file(tensors, str(temp), metadata=metadata))

    @classmethod
    def load(cls, path, adapter_sha256: str | None = None) -> "ExpressionBridge":
        """Read a bridge file; with adapter_sha256, refuse (one line) a bridge fitted for another adapter file."""
        from safetensors import safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except FileNotFoundError:
            raise BadInputError(f"expression bridge {path} does not exist; fit one with `{FIT_COMMAND}`") from None
        except Exception as err:  # safetensors raises its own error types for a damaged header
            raise BadInputError(f"{path} is not an expression bridge file ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                                f"fit one with `{FIT_COMMAND}`") from None
        if metadata.get("format") != FORMAT or "weight" not in tensors or "bias" not in tensors:
            raise BadInputError(f"{path} is not an expression bridge file (format {metadata.get('format')!r}); "
                                f"fit one with `{FIT_COMMAND}`")
        fitted_for = metadata.get("adapter_sha256", "")
        if adapter_sha256 is not None and fitted_for != adapter_sha256:
            raise BadInputError(f"{path} was fitted for another Expression Adapter file (sha256 {fitted_for[:12]}…, "
                                f"the loaded one is {adapter_sha256[:12]}…); fit a bridge for it with `{FIT_COMMAND}`")
        try:
            report = json.loads(metadata.get("report", "{}"))
            bridge = cls(tensors["weight"], tensors["bias"], fitted_for, report if isinstance(report, dict) else {})
        except (ValueError, RecursionError) as err:
            raise BadInputError(f"{path} is a damaged expression bridge ({err}); fit it again with `{FIT_COMMAND}`") from None
        if not (np.isfinite(bridge.weight).all() and np.isfinite(bridge.bias).all()):
            raise BadInputError(f"{path} holds NaN or infinite weights; fit it again with `{FIT_COMMAND}`")
        return bridge

    def group_scores(self) -> dict[str, dict[str, float]]:
        """The report's held-out R^2 and mean absolute error per output group (empty when unknown)."""
        return {name: {"r2": self.report.get("r2", {}).get(name), "mae": self.report.get("mae", {}).get(name)}
                for name in (*FLAME_GROUPS, "all")}


def find_bridge(adapter_path, explicit=None) -> Path | None:
    """The bridge file to use for this adapter file, or None when none has been fitted yet.

    explicit: a path the user gave (--bridge); it must exist and be fitted for this adapter
    (checked when loaded). Files in the default places are named by the adapter's hash.
    """
    if explicit is not None:
        return Path(explicit)
    if adapter_path is None:
        return None
    for place in candidate_paths(adapter_path):
        if place.is_file():
            return place
    return None


def load_bridge_for(adapter_path, explicit=None) -> ExpressionBridge | None:
    """The bridge for this adapter file (None when none exists); a bridge for another adapter is refused."""
    path = find_bridge(adapter_path, explicit)
    if path is None:
        return None
    return ExpressionBridge.load(path, adapter_sha256=adapter_sha256(adapter_path))


def missing_bridge_message(what: str = "a blendshape driver") -> str:
    """The one line every entry point shows when a FLAME-55 adapter meets blendshapes without a bridge."""
    return (f"{what} needs an expression bridge for the FLAME-55 Expression Adapter (blendshapes -> FLAME), "
            f"and none is fitted for this adapter yet; calibrate once with `{FIT_COMMAND}`")


def default_output(adapter_path) -> Path:
    """Where a new bridge for this adapter goes by default: the cache (always searched, always writable)."""
    return cache_bridge_path(adapter_sha256(adapter_path))


__all__ = [
    "BRIDGE_FOLDER", "CACHE_FOLDER", "ExpressionBridge", "FIT_COMMAND", "FORMAT", "adapter_sha256", "bridge_file_name",
    "cache_bridge_path", "candidate_paths", "default_output", "find_bridge", "load_bridge_for", "missing_bridge_message",
    "models_root_of",
]
