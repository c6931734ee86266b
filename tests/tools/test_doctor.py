"""`retarget doctor`: each missing piece is named with its fix, and the exit code follows what the app's default path needs."""

from __future__ import annotations

import shutil

import pytest

from retarget.tools import doctor
from retarget_launcher import main
from tests.conftest import needs_shared


def _by_name(checks):
    return {check.name: check for check in checks}


def test_a_complete_models_folder_with_the_landmarker_exits_0(tiny_models_dir, landmarker_path, capsys, monkeypatch):
    monkeypatch.setattr(doctor, "qt_check", lambda in_app=False: doctor.Check("desktop", "Qt window", doctor.OK, "stand-in"))
    code = main(["doctor", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "every published file present" in out and "MediaPipe face landmarker" in out and "H.264 encoder" in out
    assert "PyTorch" in out and "GPU" in out and "everything the app's default path needs is here" in out


def test_missing_weights_are_named_with_the_download_command(tiny_models_dir, tmp_path, landmarker_path):
    broken = tmp_path / "models"
    shutil.copytree(tiny_models_dir, broken)
    (broken / "arc2face" / "diffusion_pytorch_model.safetensors").unlink()
    (broken / "exp_adapter" / "exp_adapter.bin").unlink()
    checks = doctor.run_checks(str(broken), landmarker_path, in_app=True)
    missing = {c.name: c for c in checks if c.status == doctor.MISSING}
    unet = missing["arc2face/diffusion_pytorch_model.safetensors"]
    assert unet.needed and "3.4 GB" in unet.detail and unet.fix == f"retarget download --to {broken}"
    assert not missing["exp_adapter/exp_adapter.bin"].needed  # optional: stills without an expression still work
    assert doctor.exit_code(checks) == 1
    assert "1 needed item(s) missing: arc2face/diffusion_pytorch_model.safetensors" in doctor.report(checks)


@needs_shared
def test_without_the_landmarker_it_is_named_and_the_exit_code_is_1(tiny_models_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("RETARGET_FACE_LANDMARKER", raising=False)
    checks = doctor.run_checks(str(tiny_models_dir), None, in_app=True)
    landmarker = _by_name(checks)["MediaPipe face landmarker"]
    assert landmarker.status == doctor.MISSING and landmarker.needed and "face_landmarker.task" in landmarker.detail
    assert doctor.exit_code(checks) == 1


def test_hub_weights_absent_from_the_cache_list_what_a_first_run_fetches(landmarker_path):
    checks = doctor.run_checks("hub", landmarker_path, in_app=True)  # tests' HF_HOME is an empty temporary folder
    hub = _by_name(checks)["published weights (hub)"]
    assert hub.status == doctor.MISSING and hub.needed and "4.6 GB" in hub.detail and "retarget download" in hub.fix


def test_no_gpu_is_a_note_not_a_failure(tiny_models_dir, landmarker_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the no-GPU note cannot show")
    gpu = _by_name(doctor.system_checks())["GPU"]
    assert gpu.status == doctor.NOTE and not gpu.needed and "minutes on a CPU" in gpu.detail


def test_a_missing_qt_library_names_the_debian_package(monkeypatch):
    assert doctor.debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert doctor.debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    monkeypatch.setattr(doctor, "missing_qt_libraries", lambda: ["libxcb-cursor0", "libxcb-icccm4"])
    check = doctor.qt_check()
    assert check.status == doctor.MISSING and check.needed
    assert check.fix == "sudo apt install libxcb-cursor0 libxcb-icccm4"


def test_the_app_refuses_in_one_line_when_qt_lacks_a_library(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "missing_qt_libraries", lambda: ["libxcb-cursor0"])
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    code = main([])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "sudo apt install libxcb-cursor0" in err[0] and "--headless" in err[0]
