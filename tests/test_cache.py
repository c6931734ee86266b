"""Our cache folder and content ids: what a file holds decides its id, and its hash is computed once per version."""

from __future__ import annotations

import hashlib
import os

import retarget.cache as cache
from retarget.cache import content_id, file_sha256, user_cache_dir


def test_the_cache_folder_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "retarget"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "retarget"


def test_file_sha256_reads_files_larger_than_one_block(tmp_path):
    data = os.urandom((1 << 20) * 2 + 17)
    (tmp_path / "big.bin").write_bytes(data)
    assert file_sha256(tmp_path / "big.bin") == hashlib.sha256(data).hexdigest()


def test_new_content_under_the_same_path_is_a_new_id(tmp_path):
    adapter = tmp_path / "exp_adapter.bin"
    adapter.write_bytes(b"first training run")
    first = content_id(adapter)
    assert content_id(adapter) == first
    adapter.write_bytes(b"second training run, same path")
    assert content_id(adapter) != first


def test_a_folders_id_changes_with_any_file_inside(tmp_path):
    folder = tmp_path / "ref_adapter"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.safetensors").write_bytes(b"a")
    (folder / "sub" / "b.json").write_text("{}")
    before = content_id(folder)
    (folder / "sub" / "b.json").write_text('{"rank": 4}')
    assert content_id(folder) != before


def test_an_unchanged_file_is_hashed_once(tmp_path, monkeypatch):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"weights")
    hashed = []
    real = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda path: hashed.append(path) or real(path))
    first = content_id(target)
    assert content_id(target) == first and hashed == [target]  # the second id came from the hash cache
    assert (user_cache_dir() / "file-hashes.json").is_file()


def test_a_damaged_hash_cache_only_costs_rehashing(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"weights")
    first = content_id(target)
    (user_cache_dir() / "file-hashes.json").write_text("[not, a, dict")
    assert content_id(target) == first


def test_a_swap_with_the_same_size_and_mtime_is_a_new_id(tmp_path):
    """Issue #25: size + mtime can be forged (another file of the same size, its mtime set back); the id cannot."""
    driver = tmp_path / "driver.mp4"
    driver.write_bytes(b"take one, 24 bytes long.")
    before = driver.stat()
    first = content_id(driver)
    replacement = tmp_path / "other.mp4"
    replacement.write_bytes(b"take two, 24 bytes long.")
    os.replace(replacement, driver)
    os.utime(driver, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = driver.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert content_id(driver) != first


def test_a_file_rewritten_in_place_with_its_mtime_set_back_is_a_new_id(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    image = frames / "f0.png"
    image.write_bytes(b"AAAA")
    stamp = image.stat()
    first = content_id(frames)
    image.write_bytes(b"BBBB")  # same inode, same size
    os.utime(image, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert content_id(frames) != first
