"""`retarget doctor`: what a support thread asks for, in one report.

The machine (OS, Python, torch, CUDA/MPS and the GPU's free memory), the model files of the
default path (present or missing, their sizes and the command that fetches them), the MediaPipe
model, SMIRK, the SCRFD detector, the expression bridge, whether Qt can open a window (and the
Debian packages to install when it cannot) and the H.264/AAC codecs of PyAV. The app's Help menu
shows the same text. Nothing here downloads or loads a network: only files and libraries are looked at.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

OK, MISSING, NOTE = "ok", "missing", "note"

# Approximate sizes of the published files (what a first run downloads), for planning disk and time.
SIZES = {
    "arc2face/diffusion_pytorch_model.safetensors": "3.4 GB",
    "encoder/pytorch_model.bin": "0.5 GB",
    "arcface.onnx": "0.26 GB",
    "exp_adapter/exp_adapter.bin": "78 MB",
    "ref_adapter/pytorch_lora_weights.safetensors": "51 MB",
    "vae/diffusion_pytorch_model.safetensors": "0.33 GB",
}
FETCH = "retarget download --to DIR (then --models DIR), or start the app once with --models hub"
# The xcb platform plugin's own libraries, by Debian package (Qt 6.5+ needs xcb-cursor).
QT_XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
                   "libxcb-shape0", "libxcb-randr0", "libxcb-xinerama0", "libxcb-xkb1", "libxkbcommon-x11-0", "libegl1")


@dataclass
class Check:
    section: str
    name: str
    status: str  # ok / missing / note
    detail: str
    fix: str = ""
    needed: bool = False  # the app's default path cannot run without it

    def line(self) -> str:
        mark = {OK: "ok  ", MISSING: "MISSING" if self.needed else "absent", NOTE: "note"}[self.status]
        text = f"  [{mark}] {self.name}: {self.detail}"
        return text + (f"\n          fix: {self.fix}" if self.fix and self.status != OK else "")


def system_checks() -> list[Check]:
    checks = [Check("system", "OS", OK, f"{platform.system()} {platform.release()} ({platform.machine()})"),
              Check("system", "Python", OK, f"{platform.python_version()} ({sys.executable})")]
    try:
        import torch
    except ImportError as err:
        return checks + [Check("system", "PyTorch", MISSING, str(err), "pip install torch (see the README)", needed=True)]
    checks.append(Check("system", "PyTorch", OK, f"{torch.__version__}"))
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            checks.append(Check("system", f"GPU cuda:{index}", OK, f"{torch.cuda.get_device_name(index)}, "
                                f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB (CUDA {torch.version.cuda})"))
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        checks.append(Check("system", "GPU", OK, "Apple MPS"))
    else:
        fix = ("no NVIDIA driver/GPU seen by this CUDA build" if torch.version.cuda else
               "this is a CPU-only PyTorch: on an NVIDIA machine install a CUDA build")
        checks.append(Check("system", "GPU", NOTE, "none usable: a 512x512 frame takes minutes on a CPU (use Render video, "
                            "or a machine with a GPU)", fix))
    return checks


def _model_checks(models: str) -> list[Check]:
    from retarget.weights.downloads import ARC2FACE_FILES, BASE_FILES

    section = "weights"
    if models == "hub":
        try:
            from retarget.weights.assets import resolve_models

            files = resolve_models("hub", local_files_only=True, progress=lambda *_: None)
        except Exception:  # not (all) in the Hugging Face cache: list what a first run fetches
            need = ", ".join(f"{name} ({SIZES[name]})" for name in ARC2FACE_FILES + BASE_FILES if name in SIZES)
            return [Check(section, "published weights (hub)", MISSING, "not in the Hugging Face cache; "
                          f"a first run fetches about 4.6 GB: {need}", FETCH, needed=True)]
        return [Check(section, "published weights", OK, files.description)] + _extra_checks(files)
    if models.startswith("random:"):
        return [Check(section, "models", NOTE, f"{models}: RANDOM TEST MODELS (output is noise), written on first use")]
    folder = Path(models).expanduser()
    if not folder.is_dir():
        return [Check(section, "models folder", MISSING, f"{folder} is not a folder", FETCH, needed=True)]
    checks = []
    for name in ARC2FACE_FILES + tuple(f"sd15/{n}" for n in BASE_FILES):
        path = folder / name
        size = SIZES.get(name.removeprefix("sd15/"), "")
        if path.is_file():
            continue
        optional = name.startswith(("exp_adapter/", "ref_adapter/"))
        checks.append(Check(section, name, MISSING, f"{path} is missing" + (f" ({size})" if size else ""),
                            f"retarget download --to {folder}", needed=not optional))
    if not checks:
        checks.append(Check(section, "models folder", OK, f"{folder}: every published file present"))
    try:
        from retarget.weights.assets import resolve_models

        checks += _extra_checks(resolve_models(str(folder), progress=lambda *_: None))
    except Exception:
        pass  # the missing files are listed above
    return checks


def _extra_checks(files) -> list[Check]:
    from retarget.face.detector import find_antelopev2_detector

    checks = []
    if files.smirk is not None:
        checks.append(Check("weights", "SMIRK", OK, str(files.smirk)))
    else:
        checks.append(Check("weights", "SMIRK", MISSING, "SMIRK_em1.pt not found (the FLAME-55 adapter's video driver)",
                            FETCH, needed=True))
    detector = files.detector or find_antelopev2_detector()
    checks.append(Check("weights", "SCRFD detector", OK if detector else NOTE, str(detector) if detector else
                        "antelopev2 not found: MediaPipe's 5 points are used (the embedding differs slightly)", FETCH))
    if files.exp_adapter is not None:
        checks.append(_bridge_check(files.exp_adapter))
    return checks


def _bridge_check(adapter: Path) -> Check:
    try:
        from retarget.expression.bridge import FIT_COMMAND, find_bridge
    except ImportError:
        return Check("weights", "expression bridge", NOTE, "not supported by this version")
    try:
        import torch

        state = torch.load(adapter, map_location="meta", weights_only=True)
        width = state["image_proj"]["proj.0.weight"].shape[1]
    except Exception:
        width = None
    if width != 55:
        return Check("weights", "expression bridge", OK, "not needed (the adapter takes blendshapes)")
    found = find_bridge(adapter)
    if found is not None:
        return Check("weights", "expression bridge", OK, str(found))
    return Check("weights", "expression bridge", NOTE, "none fitted for this FLAME-55 adapter: blendshape controls, "
                 "CSV and Live Link Face drivers need one", FIT_COMMAND)


def landmarker_check(explicit=None) -> Check:
    from retarget.errors import RetargetError
    from retarget.face.landmarker import find_landmarker_model

    try:
        path = find_landmarker_model(explicit, download=False)
        return Check("perception", "MediaPipe face landmarker", OK, str(path))
    except RetargetError as err:
        return Check("perception", "MediaPipe face landmarker", MISSING, str(err), "start the app once online, or pass "
                     "--landmarker face_landmarker.task", needed=True)


def missing_qt_libraries() -> list[str]:
    """Debian packages the Qt xcb platform plugin cannot find its libraries from (Linux; [] when all load)."""
    try:
        import PyQt6
    except ImportError:
        return []
    plugin = Path(PyQt6.__file__).parent / "Qt6" / "plugins" / "platforms" / "libqxcb.so"
    if not sys.platform.startswith("linux") or not plugin.is_file():
        return []
    try:
        out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    missing = re.findall(r"^\s*(\S+)\s+=>\s+not found", out, flags=re.M)
    return sorted({debian_package(name) for name in missing})


def debian_package(soname: str) -> str:
    """libxcb-cursor.so.0 -> libxcb-cursor0; libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (Debian's naming rule)."""
    match = re.match(r"(lib.+?)\.so\.(\d+)", soname)
    if not match:
        return soname
    stem, major = match.groups()
    return f"{stem}-{major}" if stem[-1].isdigit() else f"{stem}{major}"


def uses_xcb() -> bool:
    """Whether Qt will pick its X11 (xcb) platform plugin here: Linux, and neither another platform nor Wayland chosen."""
    chosen = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux"):
        return False
    return chosen.startswith("xcb") or (not chosen and not os.environ.get("WAYLAND_DISPLAY"))


def qt_install_line(packages) -> str:
    return "sudo apt install " + " ".join(packages)


def qt_check(in_app: bool = False) -> Check:
    if in_app:
        return Check("desktop", "Qt window", OK, "this report is shown in one")
    try:
        from PyQt6.QtCore import QT_VERSION_STR
    except ImportError:
        return Check("desktop", "Qt (PyQt6)", MISSING, "PyQt6 is not installed", 'pip install -e ".[gui]"', needed=True)
    missing = missing_qt_libraries()
    if missing:
        return Check("desktop", "Qt window", MISSING, f"Qt {QT_VERSION_STR}: the xcb platform plugin lacks "
                     f"{len(missing)} system libraries", qt_install_line(missing), needed=True)
    platform_name = os.environ.get("QT_QPA_PLATFORM", "")
    if sys.platform.startswith("linux") and not platform_name and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return Check("desktop", "Qt window", NOTE, f"Qt {QT_VERSION_STR}: no display here (no $DISPLAY / $WAYLAND_DISPLAY)",
                     "run the app from a desktop session; headless work needs no window")
    return Check("desktop", "Qt window", OK, f"Qt {QT_VERSION_STR}" + (f" (platform {platform_name})" if platform_name else ""))


def codec_checks() -> list[Check]:
    import av

    checks = []
    for name, mode, what in (("libx264", "w", "H.264 encoder"), ("h264", "r", "H.264 decoder"), ("aac", "w", "AAC encoder")):
        try:
            av.codec.Codec(name, mode)
            checks.append(Check("video", what, OK, f"{name} (PyAV {av.__version__})"))
        except Exception as err:
            checks.append(Check("video", what, MISSING, f"{name}: {err}", "install PyAV from PyPI (its wheels carry FFmpeg)",
                                needed=name != "aac"))
    return checks


def run_checks(models: str = "hub", landmarker=None, in_app: bool = False) -> list[Check]:
    return [*system_checks(), *_model_checks(models), landmarker_check(landmarker), qt_check(in_app), *codec_checks()]


def report(checks: list[Check]) -> str:
    lines, section = [], None
    for check in checks:
        if check.section != section:
            section = check.section
            lines.append(f"{section}:")
        lines.append(check.line())
    needed = [c for c in checks if c.status == MISSING and c.needed]
    lines.append("")
    lines.append("everything the app's default path needs is here" if not needed else
                 f"{len(needed)} needed item(s) missing: " + ", ".join(c.name for c in needed))
    return "\n".join(lines)


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == MISSING and c.needed for c in checks) else 0
