"""The invisible watermark survives what outputs go through (H.264 at CRF 18 and 30, a resize to half,
JPEG q75) on real photos used as stand-in outputs, and is not found on unmarked pictures."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from retarget.provenance import watermark
from retarget.provenance.benchmark import half_size, h264_round_trip, jpeg_round_trip, psnr
from retarget.provenance.watermark import DETECT_Z, detect, embed

VERSION = "0.1.0"
PHOTOS = ["identity_freeman.jpg", "identity_jackie_wide.png", "identity_painting_s9.jpg", "noface_alpaca_s23.jpg",
          "expression_exp1_rgba.png", "expression_exp3_rgba.png"]


def load(path, size=None) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None:
            im = im.resize((size, size), Image.LANCZOS)
        return np.asarray(im)


def video_frames(path, every=15):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % every == 0]


def stand_in_outputs(shared_dir):
    """Real pictures as the generator's outputs: 512x512 (its size) and full photo sizes (after paste-back)."""
    media = shared_dir / "media"
    outputs = [(f"{name}@512", load(media / name, 512)) for name in PHOTOS[:3]]
    outputs += [(name, load(media / name)) for name in PHOTOS[:3]]
    outputs += [(f"driver_d0#{i}", f) for i, f in enumerate(video_frames(media / "driver_d0.mp4", every=39))]
    return outputs


ATTACKS = {
    "none": lambda x: x,
    "h264_crf18_default": lambda x: h264_round_trip(x, 18),
    "h264_crf30": lambda x: h264_round_trip(x, 30),
    "half_size": half_size,
    "jpeg_q75": jpeg_round_trip,
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_watermark_survives(shared_dir, attack):
    for name, image in stand_in_outputs(shared_dir):
        found = detect(ATTACKS[attack](embed(image, VERSION)))
        assert found.found, f"{name} after {attack}: score {found.score:.1f} < {DETECT_Z}"
        assert found.version == "0.1", (name, attack, found)


def test_marking_costs_under_the_psnr_target(shared_dir):
    for name, image in stand_in_outputs(shared_dir):
        marked = embed(image, VERSION)
        assert marked.shape == image.shape and marked.dtype == np.uint8
        assert 40.0 <= psnr(image, marked) < 60.0, name  # invisible, yet really changed


def unmarked_pictures(shared_dir):
    media = shared_dir / "media"
    pictures = [(p.name, load(p)) for p in sorted(media.glob("*")) if p.suffix in (".jpg", ".png")]
    pictures += [(p.name + "@512", load(p, 512)) for p in sorted(media.glob("*")) if p.suffix in (".jpg", ".png")]
    for clip in sorted(media.glob("*.mp4")):
        pictures += [(f"{clip.name}#{i}", f) for i, f in enumerate(video_frames(clip, every=3))]
    rng = np.random.default_rng(0)  # the kinds of test images the suite makes: noise, gradients, flat
    pictures.append(("noise", rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)))
    pictures.append(("gradient", np.broadcast_to(np.linspace(0, 255, 512, dtype=np.uint8)[None, :, None], (512, 512, 3)).copy()))
    pictures.append(("flat", np.full((512, 512, 3), 128, np.uint8)))
    return pictures


def test_not_found_on_unmarked_pictures(shared_dir):
    pictures = unmarked_pictures(shared_dir)
    assert len(pictures) > 100
    scores = {name: detect(image).score for name, image in pictures}
    false = {n: s for n, s in scores.items() if s >= DETECT_Z}
    assert not false, f"false positives: {false}"
    # The score is a standard normal on unmarked pictures: nothing near the threshold.
    assert max(abs(s) for s in scores.values()) < 4.5, max(scores.items(), key=lambda kv: abs(kv[1]))


def test_payload_carries_the_version():
    image = np.random.default_rng(1).integers(60, 200, (300, 400, 3), dtype=np.uint8)
    assert detect(embed(image, "2.11.3")).version == "2.11"
    assert watermark.version_byte("0.1.0") == 0x01


def test_too_small_frames_are_left_alone():
    tiny = np.full((48, 64, 3), 100, np.uint8)
    assert embed(tiny, VERSION) is tiny
    assert not detect(tiny).found


def test_a_video_s_frames_together_find_what_single_frames_miss(shared_dir):
    """Smooth content panning under H.264 CRF 30 is the hard case for single frames (motion compensation
    carries the previous frame's mark along); the frames' averaged residual still finds the mark, and
    averaging keeps the unmarked score a standard normal even for identical frames."""
    face = load(shared_dir / "media" / "identity_freeman.jpg", 512)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=25, options={"crf": "30"})
        s.width, s.height, s.pix_fmt = 512, 512, "yuv420p"
        for i in range(24):
            for p in s.encode(av.VideoFrame.from_ndarray(embed(np.roll(face, 4 * i, axis=1), VERSION), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(io.BytesIO(buf.getvalue())) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert watermark.detect_frames(frames[1::2]).found  # without the key frame
    assert abs(watermark.detect_frames([face] * 12).score) < 4.5
    clip = video_frames(shared_dir / "media" / "driver_d11_audio.mp4", every=18)
    assert not watermark.detect_frames(clip).found
