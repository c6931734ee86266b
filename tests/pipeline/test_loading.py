"""Model files -> components: which adapter files are attached, and one-line errors for missing or broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from retarget.weights.assets import ModelFiles
from retarget.errors import MissingWeightsError
from retarget.pipeline.loading import adapter_files, load_components


def model_files(root: Path, exp_adapter: Path | None = None, ref_lora: Path | None = None) -> ModelFiles:
    return ModelFiles(unet=root / "arc2face", encoder=root / "encoder", arcface=root / "arcface.onnx",
                      exp_adapter=exp_adapter, ref_lora=ref_lora, vae=root / "sd15" / "vae",
                      tokenizer=root / "sd15" / "tokenizer", scheduler=root / "sd15" / "scheduler", smirk=None,
                      landmarker=None, is_test_model=True, description=str(root))


def test_passed_adapter_files_win_over_the_model_sets(tmp_path):
    files = model_files(tmp_path, tmp_path / "set_exp.bin", tmp_path / "set_lora.safetensors")
    assert adapter_files(files, None, None, True, True) == (tmp_path / "set_exp.bin", tmp_path / "set_lora.safetensors")
    assert adapter_files(files, tmp_path / "mine.bin", tmp_path / "mine.safetensors", True, True) == \
        (tmp_path / "mine.bin", tmp_path / "mine.safetensors")


def test_an_adapter_turned_off_is_not_attached_even_when_present(tmp_path):
    files = model_files(tmp_path, tmp_path / "set_exp.bin", tmp_path / "set_lora.safetensors")
    assert adapter_files(files, None, None, False, False) == (None, None)
    assert adapter_files(files, None, tmp_path / "mine.safetensors", True, False) == (tmp_path / "set_exp.bin", None)


@pytest.mark.parametrize("use_exp, use_ref, flag", [(True, False, "--exp-adapter"), (False, True, "--no-reference")])
def test_a_missing_adapter_names_the_option_that_fixes_it(tmp_path, use_exp, use_ref, flag):
    with pytest.raises(MissingWeightsError) as info:
        adapter_files(model_files(tmp_path), None, None, use_exp, use_ref)
    assert flag in str(info.value) and str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_an_empty_models_folder_is_a_missing_weights_error(tmp_path):
    import torch

    with pytest.raises(MissingWeightsError) as info:
        load_components(model_files(tmp_path), torch.float32)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_a_corrupt_weights_file_names_the_file(tiny_models_dir, tmp_path):
    import shutil

    import torch

    from retarget.weights.assets import resolve_models

    copy = tmp_path / "models"
    shutil.copytree(tiny_models_dir, copy)
    broken = copy / "sd15" / "vae" / "diffusion_pytorch_model.safetensors"
    broken.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(MissingWeightsError) as info:
        load_components(resolve_models(str(copy)), torch.float32)
    message = str(info.value)
    assert str(broken) in message and "\n" not in message
