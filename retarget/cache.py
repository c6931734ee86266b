"""Our own cache (~/.cache/retarget) and what a file holds (SHA-256, content ids).

Below everything that fetches or checks files (assets, downloads, the landmarker, the identity
detector, job manifests), so none of them needs another for these helpers.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def user_cache_dir() -> Path:
    """~/.cache/retarget (or under $XDG_CACHE_HOME): the landmarker model and random test sets."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "retarget"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_cache_path() -> Path:
    return user_cache_dir() / "file-hashes.json"


def content_id(path) -> str:
    """What a file (or every file of a folder) holds: its SHA-256, cached by (path, size, mtime, inode, ctime).

    Job manifests use it, so retraining an adapter in place (same path, new content) is a different job.
    Size and mtime alone can be forged (a file swapped for another of the same size with its mtime set back);
    the inode and the change time (which no program can set back) cannot, so any such swap is hashed again.
    """
    from retarget.outputs import resolved, write_json

    root = resolved(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    cache_file = _hash_cache_path()
    try:
        cache = json.loads(cache_file.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError, RecursionError):
        cache = {}  # a missing or damaged cache only costs re-hashing
    changed = False
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        stamp = f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_ctime_ns}"
        entry = cache.get(str(file))
        if not isinstance(entry, dict) or entry.get("stamp") != stamp or not isinstance(entry.get("sha256"), str):
            entry = cache[str(file)] = {"stamp": stamp, "sha256": file_sha256(file)}
            changed = True
        # The id is the names and contents only: a copy or a touch (new stamp, same bytes) is the same job.
        digest.update(f"{file.relative_to(root) if root.is_dir() else file.name}:{entry['sha256']}\n".encode())
    if changed:
        try:
            write_json(cache_file, cache, indent=0)
        except OSError:
            pass  # an unwritable cache only costs re-hashing next time
    return digest.hexdigest()
