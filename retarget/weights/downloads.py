"""`retarget download`: every file the published pipeline needs, from the four places the release names.

The hub repo and the SD 1.5 parts come through huggingface_hub, SMIRK_em1.pt and the antelopev2
archive from Google Drive through gdown, MediaPipe's face_landmarker.task from its model storage.
All of them resume an interrupted transfer (huggingface_hub and gdown keep partial files; the
landmarker is small and fetched whole). Files already present are skipped; a failure is one line
naming the file and how to get it by hand.
"""

from __future__ import annotations

import contextlib
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from retarget.errors import MissingWeightsError, first_line
from retarget.face.detector import ANTELOPEV2_DETECTOR, ANTELOPEV2_DIR
from retarget.outputs import refuse_foreign

# The published release on the hub: the Arc2Face repo and the SD 1.5 parts it runs on (assets resolves
# the same files in the hub cache).
ARC2FACE_REPO = "FoivosPar/Arc2Face"
BASE_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
ARC2FACE_FILES = (
    "arc2face/config.json",
    "arc2face/diffusion_pytorch_model.safetensors",
    "encoder/config.json",
    "encoder/pytorch_model.bin",
    "arcface.onnx",
    "exp_adapter/exp_adapter.bin",
    "ref_adapter/pytorch_lora_weights.safetensors",
)
BASE_FILES = (
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "scheduler/scheduler_config.json",
)

SMIRK_DRIVE_ID = "1T65uEd9dVLHgVw5KiUYL66NUee-MCzoE"
ANTELOPEV2_DRIVE_ID = "18wEUfMNohBJ4K3Ly5wpTejPfDzp-8fI8"
SMIRK_TARGET = "smirk/SMIRK_em1.pt"
DETECTOR_TARGET = f"{ANTELOPEV2_DIR}/{ANTELOPEV2_DETECTOR}"
LANDMARKER_TARGET = "face_landmarker.task"
PARTIAL_DIR = ".partial"  # archives and unfinished transfers; resumed from here

# Third-party files and their terms, named once per run before the first such file is fetched.
LICENCES = {
    "arc2face": f"{ARC2FACE_REPO}: MIT (its model card)",
    "sd15": f"{BASE_REPO}: CreativeML OpenRAIL-M",
    "smirk": "SMIRK_em1.pt (georgeretsi/smirk): MIT (its repository)",
    "insightface": "antelopev2 (insightface): non-commercial research use only (insightface's model licence)",
    "mediapipe": "face_landmarker.task (MediaPipe): Apache-2.0",
}


class Network:
    """The network boundary: every byte fetched from outside goes through one of these methods."""

    def __init__(self, tqdm_class=None):
        self.tqdm_class = tqdm_class  # huggingface_hub's progress reporting (None: its own bars)

    def hub_file(self, repo: str, filename: str, folder: Path) -> None:
        from huggingface_hub import hf_hub_download

        # progress bar; resumes its .incomplete file
        hf_hub_download(repo, filename, local_dir=folder, tqdm_class=self.tqdm_class)

    def drive_file(self, file_id: str, output: Path) -> None:
        import gdown

        check_gdown_partials(Path(output))
        # gdown keeps a partial file beside the output and renames it only when complete.
        if gdown.download(id=file_id, output=str(output), resume=True, quiet=False) is None:
            raise OSError("Google Drive gave no file (quota or permission)")

    def url_file(self, url: str, output: Path, sha256: str) -> None:
        from retarget.face.landmarker import download_checked

        download_checked(url, output, sha256)  # checksummed, temp file renamed when complete


@dataclass(frozen=True)
class Download:
    label: str
    target: str  # relative to the models folder; present means done
    licence: str  # key into LICENCES
    manual: str  # the step that gets the file by hand, for the error line
    fetch: Callable[[Network, Path], None]


def _hub(repo: str, name: str, prefix: str, licence: str) -> Download:
    target = f"{prefix}{name}"
    return Download(
        label=f"{repo}/{name}", target=target, licence=licence,
        manual=f"download https://huggingface.co/{repo}/resolve/main/{name} to MODELS/{target}",
        fetch=lambda net, to: net.hub_file(repo, name, to / prefix if prefix else to),
    )


def check_gdown_partials(output: Path) -> None:
    """gdown appends to `<name>XXXXXXXX.part` beside its output (resume), following links: refuse anything there
    (and at the output) that is not a regular file, so it never writes into a file we did not make."""
    refuse_foreign(output, "download")
    if output.parent.is_dir():
        for name in os.listdir(output.parent):
            if name.startswith(output.name) and name.endswith(".part") and len(name) == len(output.name) + 13:
                refuse_foreign(output.parent / name, "partial download")


def _partial_folder(to: Path) -> Path:
    folder = to / PARTIAL_DIR
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise MissingWeightsError(f"{folder}: is not a folder made by retarget (a link or a file); remove it and run the command again")
    return folder


def _fetch_smirk(net: Network, to: Path) -> None:
    target = to / SMIRK_TARGET
    target.parent.mkdir(parents=True, exist_ok=True)
    net.drive_file(SMIRK_DRIVE_ID, target)


def _fetch_antelopev2(net: Network, to: Path) -> None:
    archive = _partial_folder(to) / "antelopev2.zip"
    refuse_foreign(archive, "download")
    archive.parent.mkdir(parents=True, exist_ok=True)
    if not archive.is_file():
        net.drive_file(ANTELOPEV2_DRIVE_ID, archive)
    try:
        unpack_detector(archive, to / ANTELOPEV2_DIR)
    finally:
        archive.unlink(missing_ok=True)  # ours: fetched above; only the detector is kept (a refused one is useless)
        with contextlib.suppress(OSError):
            archive.parent.rmdir()  # our .partial folder, when nothing else waits in it


# The published antelopev2 archive holds 5 members (about 360 MB unpacked, the detector 17 MB): far above
# anything real, far below what a zip bomb unpacks to.
ARCHIVE_MAX_MEMBERS = 64
ARCHIVE_MAX_TOTAL = 2 << 30
DETECTOR_MAX_BYTES = 256 << 20


def _check_archive(pack: zipfile.ZipFile, archive: Path) -> zipfile.ZipInfo:
    """The detector member, once the archive passes its limits: member count, declared total size, a regular file."""
    infos = pack.infolist()
    if len(infos) > ARCHIVE_MAX_MEMBERS:
        raise MissingWeightsError(f"{archive}: {len(infos)} members, more than the {ARCHIVE_MAX_MEMBERS} an antelopev2 "
                                  f"archive can hold; it is not the published archive: download it again")
    if sum(info.file_size for info in infos) > ARCHIVE_MAX_TOTAL:
        raise MissingWeightsError(f"{archive}: unpacks to more than {ARCHIVE_MAX_TOTAL >> 30} GB; it is not the published "
                                  f"antelopev2 archive: download it again")
    members = [info for info in infos if PurePosixPath(info.filename).name == ANTELOPEV2_DETECTOR]
    if not members:
        raise MissingWeightsError(f"{archive}: no {ANTELOPEV2_DETECTOR} in the antelopev2 archive")
    member = members[0]
    kind = stat.S_IFMT(member.external_attr >> 16)
    if member.is_dir() or kind not in (0, stat.S_IFREG):
        raise MissingWeightsError(f"{archive}: {member.filename} is not a regular file (a link or a folder); "
                                  f"download the archive again")
    return member


def unpack_detector(archive: Path, folder: Path) -> Path:
    """Extract the SCRFD detector from the antelopev2 archive (flat or nested) into folder; the rest stays packed.

    glintr100.onnx is not needed: the Arc2Face release replaces it with arcface.onnx. Only that one member is
    written, under our own name inside `folder`, and never more than DETECTOR_MAX_BYTES of it (a member's
    declared size can lie); on any refusal nothing is left behind.
    """
    made_folder = not folder.exists()
    target = folder / ANTELOPEV2_DETECTOR
    temp = folder / f".{ANTELOPEV2_DETECTOR}.partial"
    try:
        with zipfile.ZipFile(archive) as pack:
            member = _check_archive(pack, archive)
            refuse_foreign(target, "download")
            refuse_foreign(temp, "temporary file")
            folder.mkdir(parents=True, exist_ok=True)
            with pack.open(member) as source, open(temp, "wb") as sink:
                copied = 0
                for block in iter(lambda: source.read(1 << 20), b""):
                    copied += len(block)
                    if copied > DETECTOR_MAX_BYTES:
                        raise MissingWeightsError(f"{archive}: {member.filename} unpacks to more than "
                                                  f"{DETECTOR_MAX_BYTES >> 20} MB; it is not the published detector: "
                                                  f"download the archive again")
                    sink.write(block)
            os.replace(temp, target)
            return target
    except zipfile.BadZipFile:
        raise MissingWeightsError(f"{archive.name}: not a zip archive (the download was damaged); run the command again") from None
    finally:
        if temp.is_file() and not temp.is_symlink():
            temp.unlink()  # ours: a refused or interrupted unpack
        if made_folder and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _fetch_landmarker(net: Network, to: Path) -> None:
    from retarget.face.landmarker import LANDMARKER_SHA256, LANDMARKER_URL

    net.url_file(LANDMARKER_URL, to / LANDMARKER_TARGET, LANDMARKER_SHA256)


def extras() -> list[Download]:
    """The files that are not on the Hugging Face hub."""
    from retarget.face.landmarker import LANDMARKER_URL

    return [
        Download("SMIRK_em1.pt (SMIRK expression encoder)", SMIRK_TARGET, "smirk",
                 f"run `gdown --id {SMIRK_DRIVE_ID}` and put the file at MODELS/{SMIRK_TARGET}", _fetch_smirk),
        Download("antelopev2 face detector (insightface)", DETECTOR_TARGET, "insightface",
                 f"run `gdown --id {ANTELOPEV2_DRIVE_ID}`, unzip it and put {ANTELOPEV2_DETECTOR} at MODELS/{DETECTOR_TARGET}",
                 _fetch_antelopev2),
        Download("face_landmarker.task (MediaPipe)", LANDMARKER_TARGET, "mediapipe",
                 f"download {LANDMARKER_URL} to MODELS/{LANDMARKER_TARGET}", _fetch_landmarker),
    ]


def everything() -> list[Download]:
    """What `retarget download --to DIR` puts into DIR, in order."""
    return ([_hub(ARC2FACE_REPO, name, "", "arc2face") for name in ARC2FACE_FILES]
            + [_hub(BASE_REPO, name, "sd15/", "sd15") for name in BASE_FILES]
            + extras())


def _one_line(err: BaseException) -> str:
    reason = getattr(err, "reason", None)  # urllib's errors keep the useful part here
    return first_line(str(reason) if reason else err)


def fetch(items: list[Download], to: Path, progress: Callable[[str], None] = print, network: Network | None = None) -> list[str]:
    """Fetch each missing item into `to`; returns the targets fetched. The first failure raises one line."""
    network = network or Network()
    to = Path(to).expanduser()
    to.mkdir(parents=True, exist_ok=True)
    missing = [item for item in items if not (to / item.target).exists()]
    if len(missing) < len(items):
        progress(f"{len(items) - len(missing)} of {len(items)} files already in {to}; skipped")
    named: set[str] = set()
    for number, item in enumerate(missing, 1):
        if item.licence not in named:
            named.add(item.licence)
            progress(f"licence: {LICENCES[item.licence]}")
        progress(f"[{number}/{len(missing)}] {item.label}")
        try:
            item.fetch(network, to)
        except Exception as err:  # every transport has its own error types; all end the same way
            raise MissingWeightsError(
                f"could not download {item.label} ({type(err).__name__}: {_one_line(err)}); "
                f"{item.manual.replace('MODELS', str(to))}, or run the command again (finished files are kept)"
            ) from None
        if not (to / item.target).exists():
            raise MissingWeightsError(f"could not download {item.label} (nothing arrived at {to / item.target}); "
                                      f"{item.manual.replace('MODELS', str(to))}")
    partial = to / PARTIAL_DIR
    if partial.is_dir() and not any(partial.iterdir()):
        partial.rmdir()
    return [item.target for item in missing]
