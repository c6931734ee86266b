"""Where weights live: a models folder, the hub cache, random test sets; one-line errors naming what is missing."""

from __future__ import annotations

import shutil

import pytest

from retarget.weights.assets import FETCH_HINT, resolve_models
from retarget.errors import MissingWeightsError, RetargetError


def test_a_models_folder_resolves_to_the_published_paths(tiny_models_dir):
    files = resolve_models(str(tiny_models_dir))
    assert files.unet == tiny_models_dir / "arc2face" and files.encoder == tiny_models_dir / "encoder"
    assert files.vae == tiny_models_dir / "sd15" / "vae" and files.scheduler == tiny_models_dir / "sd15" / "scheduler"
    assert files.exp_adapter == tiny_models_dir / "exp_adapter" / "exp_adapter.bin"
    assert files.ref_lora == tiny_models_dir / "ref_adapter" / "pytorch_lora_weights.safetensors"
    assert files.is_test_model and "RANDOM TEST MODEL" in files.description


def test_optional_adapters_absent_are_none_and_required_files_absent_are_named(tiny_models_dir, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(tiny_models_dir, copy)
    shutil.rmtree(copy / "ref_adapter")
    assert resolve_models(str(copy)).ref_lora is None
    (copy / "sd15" / "tokenizer" / "vocab.json").unlink()
    with pytest.raises(MissingWeightsError) as info:
        resolve_models(str(copy))
    message = str(info.value)
    assert str(copy / "sd15" / "tokenizer" / "vocab.json") in message and FETCH_HINT in message and "\n" not in message


def test_a_missing_folder_and_an_unknown_random_size_are_one_line(tmp_path):
    with pytest.raises(MissingWeightsError, match="no such folder"):
        resolve_models(str(tmp_path / "nope"))
    with pytest.raises(RetargetError, match="random:tiny"):
        resolve_models("random:huge")


def test_hub_without_the_cache_and_without_network_says_how_to_fetch():
    # The test session's HF_HOME is an empty temporary folder (conftest), and local_files_only forbids the network.
    with pytest.raises(MissingWeightsError) as info:
        resolve_models("hub", local_files_only=True)
    assert "FoivosPar/Arc2Face" in str(info.value) and FETCH_HINT in str(info.value) and "\n" not in str(info.value)
