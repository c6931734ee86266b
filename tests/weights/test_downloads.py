"""`retarget download`: what is fetched to where, skipping, unpacking, failures (everything up to the network)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from retarget.weights.downloads import (
    ANTELOPEV2_DRIVE_ID, ARC2FACE_FILES, ARC2FACE_REPO, BASE_FILES, BASE_REPO, LICENCES, SMIRK_DRIVE_ID, Network, everything,
    extras, fetch,
)
from retarget.errors import MissingWeightsError
from retarget.face.detector import ScrfdFaceDetector, find_antelopev2_detector
from retarget.weights.test_face_models import write_random_scrfd_onnx
from retarget.face.landmarker import LANDMARKER_URL

ANTELOPEV2_MEMBERS = ("1k3d68.onnx", "2d106det.onnx", "genderage.onnx", "glintr100.onnx", "scrfd_10g_bnkps.onnx")


def antelopev2_archive(path: Path, nested: bool = True) -> Path:
    """A zip with the published archive's layout (antelopev2/<five models>), a random SCRFD as the detector."""
    scrfd = write_random_scrfd_onnx(path.parent / "scrfd_src.onnx")
    with zipfile.ZipFile(path, "w") as pack:
        for name in ANTELOPEV2_MEMBERS:
            arcname = f"antelopev2/{name}" if nested else name
            if name == "scrfd_10g_bnkps.onnx":
                pack.write(scrfd, arcname)
            else:
                pack.writestr(arcname, f"stand-in for {name}")
    return path


class LocalNetwork(Network):
    """Serves the files from local stand-ins and records each request: the boundary, nothing inside it."""

    def __init__(self, drive: dict[str, Path], fail: dict[str, Exception] | None = None):
        self.drive, self.fail, self.calls = drive, fail or {}, []

    def _maybe_fail(self, key: str):
        if key in self.fail:
            raise self.fail[key]

    def hub_file(self, repo, filename, folder):
        self.calls.append(("hub", repo, filename, Path(folder)))
        self._maybe_fail(filename)
        target = Path(folder) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{repo}/{filename}")

    def drive_file(self, file_id, output):
        self.calls.append(("drive", file_id, Path(output)))
        self._maybe_fail(file_id)
        shutil.copyfile(self.drive[file_id], output)

    def url_file(self, url, output, sha256):
        self.calls.append(("url", url, Path(output)))
        self._maybe_fail(url)
        Path(output).write_text("landmarker")


@pytest.fixture
def drive(tmp_path):
    source = tmp_path / "drive"
    source.mkdir()
    smirk = source / "SMIRK_em1.pt"
    smirk.write_bytes(b"smirk weights")
    return {SMIRK_DRIVE_ID: smirk, ANTELOPEV2_DRIVE_ID: antelopev2_archive(source / "antelopev2.zip")}


def test_every_file_goes_where_the_loaders_look(tmp_path, drive):
    to = tmp_path / "models"
    network, lines = LocalNetwork(drive), []
    fetched = fetch(everything(), to, lines.append, network)
    assert len(fetched) == len(ARC2FACE_FILES) + len(BASE_FILES) + 3
    hub = [(repo, name, folder) for kind, repo, name, folder in (c for c in network.calls if c[0] == "hub")]
    assert hub == [(ARC2FACE_REPO, n, to) for n in ARC2FACE_FILES] + [(BASE_REPO, n, to / "sd15") for n in BASE_FILES]
    assert [c[1] for c in network.calls if c[0] == "drive"] == [SMIRK_DRIVE_ID, ANTELOPEV2_DRIVE_ID]
    assert [c[1:] for c in network.calls if c[0] == "url"] == [(LANDMARKER_URL, to / "face_landmarker.task")]
    for name in ARC2FACE_FILES:
        assert (to / name).read_text() == f"{ARC2FACE_REPO}/{name}"
    for name in BASE_FILES:
        assert (to / "sd15" / name).read_text() == f"{BASE_REPO}/{name}"
    assert (to / "smirk" / "SMIRK_em1.pt").read_bytes() == b"smirk weights"
    # The archive: only the detector is kept, unpacked to antelopev2/, and it loads.
    assert sorted(p.name for p in (to / "antelopev2").iterdir()) == ["scrfd_10g_bnkps.onnx"]
    assert find_antelopev2_detector(to) == to / "antelopev2" / "scrfd_10g_bnkps.onnx"
    ScrfdFaceDetector(to / "antelopev2" / "scrfd_10g_bnkps.onnx")
    assert not (to / ".partial").exists()  # the archive we fetched is gone
    # Each licence named exactly once, before its files.
    licence_lines = [line for line in lines if line.startswith("licence: ")]
    assert sorted(licence_lines) == sorted(f"licence: {text}" for text in LICENCES.values())
    assert sum(line.startswith("[") for line in lines) == len(fetched)  # one progress line per file


def test_present_files_are_skipped(tmp_path, drive):
    to = tmp_path / "models"
    fetch(everything(), to, lambda line: None, LocalNetwork(drive))
    again, lines = LocalNetwork(drive), []
    assert fetch(everything(), to, lines.append, again) == []
    assert again.calls == [] and lines == [f"{len(everything())} of {len(everything())} files already in {to}; skipped"]
    # Remove two: only those are fetched again (and only their licences named).
    (to / "smirk" / "SMIRK_em1.pt").unlink()
    (to / "sd15" / "vae" / "config.json").unlink()
    third, lines = LocalNetwork(drive), []
    assert sorted(fetch(everything(), to, lines.append, third)) == ["sd15/vae/config.json", "smirk/SMIRK_em1.pt"]
    assert len(third.calls) == 2
    assert [line for line in lines if line.startswith("licence")] == [f"licence: {LICENCES['sd15']}", f"licence: {LICENCES['smirk']}"]


def test_a_flat_archive_unpacks_the_same_way(tmp_path, drive):
    drive[ANTELOPEV2_DRIVE_ID] = antelopev2_archive(tmp_path / "flat.zip", nested=False)
    fetch(extras(), tmp_path / "m", lambda line: None, LocalNetwork(drive))
    assert sorted(p.name for p in (tmp_path / "m" / "antelopev2").iterdir()) == ["scrfd_10g_bnkps.onnx"]


@pytest.mark.parametrize("key, named, manual", [
    (SMIRK_DRIVE_ID, "SMIRK_em1.pt", f"gdown --id {SMIRK_DRIVE_ID}"),
    (ANTELOPEV2_DRIVE_ID, "antelopev2", f"gdown --id {ANTELOPEV2_DRIVE_ID}"),
    (LANDMARKER_URL, "face_landmarker.task", LANDMARKER_URL),
    ("vae/diffusion_pytorch_model.safetensors", f"{BASE_REPO}/vae/diffusion_pytorch_model.safetensors",
     f"https://huggingface.co/{BASE_REPO}/resolve/main/vae/diffusion_pytorch_model.safetensors"),
])
def test_a_failed_download_is_one_line_naming_the_file_and_the_manual_step(tmp_path, drive, key, named, manual):
    to = tmp_path / "models"
    error = ConnectionError("Max retries exceeded with url\nsecond line of detail")
    with pytest.raises(MissingWeightsError) as caught:
        fetch(everything(), to, lambda line: None, LocalNetwork(drive, fail={key: error}))
    message = str(caught.value)
    assert "\n" not in message and named in message and manual in message and "Max retries exceeded" in message
    assert str(to) in message  # the manual step says where the file goes


def test_a_damaged_archive_is_removed_and_reported(tmp_path, drive):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"an html page from Google Drive, not a zip")
    drive[ANTELOPEV2_DRIVE_ID] = broken
    to = tmp_path / "models"
    with pytest.raises(MissingWeightsError, match="not a zip archive") as caught:
        fetch(extras(), to, lambda line: None, LocalNetwork(drive))
    assert "\n" not in str(caught.value)
    assert not (to / ".partial" / "antelopev2.zip").exists() and not (to / "antelopev2" / "scrfd_10g_bnkps.onnx").exists()


def test_cli_download_reports_a_failure_in_one_line(tmp_path, monkeypatch, capsys):
    from retarget.weights import downloads
    from retarget.cli import main

    def offline(self, repo, filename, folder):
        raise OSError("network unreachable")

    monkeypatch.setattr(downloads.Network, "hub_file", offline)
    code = main(["download", "--to", str(tmp_path / "models")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1].count("could not download") == 1 and f"{ARC2FACE_REPO}/arc2face/config.json" in err[-1]
    assert "Traceback" not in "\n".join(err)


# issue #25: archives are unpacked within limits, only their regular detector member, and nothing stays on refusal
def _fetch_antelopev2_only(to: Path, archive: Path):
    return fetch([item for item in extras() if "antelopev2" in item.label], to, lambda line: None,
                 LocalNetwork({ANTELOPEV2_DRIVE_ID: archive}))


def _assert_nothing_left(to: Path) -> None:
    assert sorted(p.name for p in to.iterdir()) == []  # no .partial, no antelopev2 folder, no temp


def test_a_zip_bomb_detector_is_refused_and_nothing_is_left(tmp_path, monkeypatch):
    import retarget.weights.downloads as downloads

    monkeypatch.setattr(downloads, "DETECTOR_MAX_BYTES", 1 << 20)  # the real limit is 256 MB; same code path
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as pack:
        pack.writestr("antelopev2/scrfd_10g_bnkps.onnx", b"\0" * (4 << 20))
    assert bomb.stat().st_size < 64 << 10  # a small archive that unpacks to far more
    to = tmp_path / "models"
    with pytest.raises(MissingWeightsError, match="unpacks to more than") as caught:
        _fetch_antelopev2_only(to, bomb)
    assert "\n" not in str(caught.value)
    _assert_nothing_left(to)


@pytest.mark.parametrize("limit, build", [
    ("members", lambda pack: [pack.writestr(f"antelopev2/x{i}.onnx", b"x") for i in range(100)]),
    ("total", lambda pack: pack.writestr("antelopev2/glintr100.onnx", b"\0" * (3 << 20))),
])
def test_an_archive_over_its_limits_is_refused_before_unpacking(tmp_path, monkeypatch, limit, build):
    import retarget.weights.downloads as downloads

    monkeypatch.setattr(downloads, "ARCHIVE_MAX_TOTAL", 2 << 20)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as pack:
        build(pack)
        pack.writestr("antelopev2/scrfd_10g_bnkps.onnx", b"detector")
    to = tmp_path / "models"
    with pytest.raises(MissingWeightsError, match="more than"):
        _fetch_antelopev2_only(to, archive)
    _assert_nothing_left(to)


def test_a_detector_member_that_is_a_link_is_refused(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as pack:
        info = zipfile.ZipInfo("antelopev2/scrfd_10g_bnkps.onnx")
        info.external_attr = (0o120777 << 16)  # a symbolic link member pointing at a user file
        pack.writestr(info, "/etc/hostname")
    to = tmp_path / "models"
    with pytest.raises(MissingWeightsError, match="not a regular file"):
        _fetch_antelopev2_only(to, archive)
    _assert_nothing_left(to)


def test_a_partial_download_name_that_is_a_link_is_never_written_through(tmp_path):
    user_file = tmp_path / "user.txt"
    user_file.write_text("the user's own file")
    to = tmp_path / "models"
    (to / "smirk").mkdir(parents=True)
    (to / "smirk" / "SMIRK_em1.ptABCDEFGH.part").symlink_to(user_file)  # gdown would append to it on resume
    with pytest.raises(MissingWeightsError, match="symbolic link") as caught:
        fetch([item for item in extras() if item.target.startswith("smirk")], to, lambda line: None, Network())
    assert "\n" not in str(caught.value)
    assert user_file.read_text() == "the user's own file"
    assert (to / "smirk" / "SMIRK_em1.ptABCDEFGH.part").is_symlink()


def test_a_partial_folder_that_is_a_link_is_refused(tmp_path, drive):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    to = tmp_path / "models"
    to.mkdir()
    (to / ".partial").symlink_to(elsewhere)
    with pytest.raises(MissingWeightsError, match="not a folder made by retarget"):
        _fetch_antelopev2_only(to, drive[ANTELOPEV2_DRIVE_ID])
    assert list(elsewhere.iterdir()) == []
