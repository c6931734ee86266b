"""--device and --dtype: names to torch objects, and one-line errors for what this machine cannot do."""

from __future__ import annotations

import pytest
import torch

from retarget.errors import RetargetError
from retarget.pipeline.devices import default_dtype, pick_device, pick_dtype


def test_named_devices_and_dtypes():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_dtype("fp16", torch.device("cpu")) == torch.float16
    assert pick_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert pick_dtype("fp32", torch.device("cuda")) == torch.float32


def test_auto_dtype_is_half_on_cuda_only():
    assert pick_dtype("auto", torch.device("cuda")) == default_dtype(torch.device("cuda")) == torch.float16
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert pick_dtype("auto", torch.device("mps")) == torch.float32


def test_auto_device_is_one_this_machine_has():
    device = pick_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    else:
        assert device.type in ("cpu", "mps")


@pytest.mark.parametrize("name, phrase", [("gpu0", "not a device name"), ("cuda:x", "not a device name")])
def test_a_bad_device_name_is_one_line(name, phrase):
    with pytest.raises(RetargetError) as info:
        pick_device(name)
    assert phrase in str(info.value) and name in str(info.value) and "\n" not in str(info.value)


def test_cuda_that_is_not_there_is_refused_with_the_way_out(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RetargetError, match="--device cpu"):
        pick_device("cuda")


def test_a_cuda_index_beyond_the_machines_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RetargetError, match="1 CUDA device"):
        pick_device("cuda:3")
    assert pick_device("cuda:0") == torch.device("cuda", 0)
