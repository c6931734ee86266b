"""The media-kind registry: one place names images, videos, CSVs and cameras, and its users agree with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from retarget.names.kinds import (BLENDSHAPE_SUFFIXES, IMAGE_SUFFIXES, OUTPUT_VIDEO_SUFFIXES, VIDEO_SUFFIXES, file_patterns,
                                  is_webcam_spec, media_kind, webcam_device)


@pytest.mark.parametrize("spec, device", [("webcam:0", 0), ("webcam:12", 12), ("/dev/video3", "/dev/video3"),
                                          ("webcam:/dev/video2", "/dev/video2"), ("webcam:FaceTime HD", "FaceTime HD")])
def test_webcam_specs_name_their_device(spec, device):
    assert webcam_device(spec) == device and is_webcam_spec(spec) and media_kind(spec) == "webcam"


@pytest.mark.parametrize("spec", ["webcam:", "/dev/video", "/dev/videos/clip.mp4", "clips/webcam:0.mp4", "photo.png", ""])
def test_other_specs_are_not_cameras(spec):
    assert webcam_device(spec) is None and not is_webcam_spec(spec)


@pytest.mark.parametrize("name, kind", [("a.png", "image"), ("A.JPEG", "image"), ("x/y.webp", "image"), ("clip.mp4", "video"),
                                        ("clip.MOV", "video"), ("take.avi", "video"), ("anim.gif", "video"),
                                        ("take.csv", "blendshapes"), ("notes.txt", None), ("folder", None)])
def test_media_kind_reads_the_name(name, kind):
    assert media_kind(name) == kind and media_kind(Path(name)) == kind


def test_the_lists_do_not_overlap_and_what_we_write_we_also_read():
    assert set(OUTPUT_VIDEO_SUFFIXES) <= set(VIDEO_SUFFIXES)
    assert not set(IMAGE_SUFFIXES) & set(VIDEO_SUFFIXES) and not set(BLENDSHAPE_SUFFIXES) & set(VIDEO_SUFFIXES + IMAGE_SUFFIXES)
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_SUFFIXES + VIDEO_SUFFIXES + BLENDSHAPE_SUFFIXES)
    assert file_patterns((".png", ".jpg")) == "*.png *.jpg"


def test_a_folder_batch_takes_every_readable_video_and_csv(tmp_path):
    from retarget.engine.jobs import expand_drivers

    for name in ("a.mp4", "b.avi", "c.gif", "d.csv", "e.png", "f.txt"):
        (tmp_path / name).write_bytes(b"")
    drivers, batch = expand_drivers([tmp_path])
    assert batch and [p.name for p in drivers] == ["a.mp4", "b.avi", "c.gif", "d.csv"]


def test_output_checks_skip_camera_specs_but_not_paths_that_only_look_like_them(tmp_path):
    from retarget.outputs import OutputError, check_output

    out = tmp_path / "o.mp4"
    assert check_output(out, {"--driver": "/dev/video0"}) == out
    with pytest.raises(OutputError):  # a real file whose name starts like a camera spec is still an input
        check_output(tmp_path / "webcam:0", {"--driver": tmp_path / "webcam:0"})


def test_live_recording_refuses_a_container_we_do_not_write(tmp_path):
    from retarget.cli.live import run_live
    from retarget.errors import BadInputError

    with pytest.raises(BadInputError, match="live recording writes a video"):
        run_live(None, "webcam:0", tmp_path / "rec.avi", None)  # readable, but not a container we write
