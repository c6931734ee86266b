"""The refusals that need no model happen before any model loads and leave nothing on disk (no `.NAME.work/`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retarget.cli import main
from retarget.errors import BadInputError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.media.blendshape_csv import BlendshapeCsvWriter
from retarget.media.video_sink import VideoSink


@pytest.fixture
def loads(monkeypatch) -> list:
    """Every call that would load models (the session's loader and the retargeter's) is recorded, and stops the run."""
    import retarget.session.retargeter
    import retarget.session

    calls = []

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        raise AssertionError("models were loaded")

    monkeypatch.setattr(retarget.session.Session, "load_models", spy)
    monkeypatch.setattr(retarget.session.retargeter, "load_retargeter", spy)
    return calls


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    photo = folder / "me.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    video = folder / "talk.mp4"
    with VideoSink(video, 25, (64, 64)) as sink:
        for i in range(5):
            sink.write(np.full((64, 64, 3), 40 * i, np.uint8))
    take = folder / "take.csv"
    with BlendshapeCsvWriter(take) as writer:
        for i in range(10):
            writer.write(i / 30, np.full(len(BLENDSHAPE_NAMES), 0.1, np.float32))
    return {"photo": photo, "video": video, "csv": take}


def outputs_left(folder: Path) -> list[str]:
    """Everything under the output folder, hidden work folders and temporary files included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def refused(args: list[str], capsys, *fragments: str) -> str:
    assert main(["--headless", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("retarget: error: "), err
    for fragment in fragments:
        assert fragment in err[0], err[0]
    return err[0]


def test_an_image_output_for_a_video_driver_is_refused_before_loading(tmp_path, inputs, loads, capsys):
    out = tmp_path / "out"
    out.mkdir()
    refused(["--models", "random:tiny", "--identity", str(inputs["photo"]), "--driver", str(inputs["video"]),
             "--out", str(out / "o.png")], capsys, "--out", "o.png", ".mp4")
    assert loads == [] and outputs_left(out) == []


def test_side_by_side_with_a_csv_driver_is_refused_before_loading(tmp_path, inputs, loads, capsys,
                                                                  blendshape_models_dir):
    out = tmp_path / "out"
    out.mkdir()
    refused(["--models", str(blendshape_models_dir), "--identity", str(inputs["photo"]), "--driver", str(inputs["csv"]),
             "--out", str(out / "o.mp4"), "--side-by-side", str(out / "both.mp4")], capsys, "--side-by-side", "take.csv")
    assert loads == [] and outputs_left(out) == []


def test_a_csv_driver_for_the_flame_adapter_is_refused_before_loading(tmp_path, inputs, loads, capsys, tiny_models_dir,
                                                                      monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a cache where random:tiny is surely not built
    out = tmp_path / "out"
    out.mkdir()
    refused(["--models", str(tiny_models_dir), "--identity", str(inputs["photo"]), "--driver", str(inputs["csv"]),
             "--out", str(out / "o.mp4")], capsys, "take.csv", "FLAME-55", "retarget bridge fit")
    assert loads == [] and outputs_left(out) == []
    # The same with the adapter given as a file, and with a random set that is not even built yet.
    refused(["--models", str(tiny_models_dir), "--exp-adapter", str(tiny_models_dir / "exp_adapter" / "exp_adapter.bin"),
             "--identity", str(inputs["photo"]), "--driver", str(inputs["csv"]), "--out", str(out / "o.mp4")], capsys,
            "FLAME-55")
    from retarget.weights.assets import random_models_folder

    refused(["--models", "random:tiny", "--identity", str(inputs["photo"]), "--driver", str(inputs["csv"]),
             "--out", str(out / "o.mp4")], capsys, "FLAME-55")
    assert not random_models_folder("tiny").exists()  # refused without building the random set
    assert loads == [] and outputs_left(out) == []


def test_fps_with_a_video_driver_is_refused_before_loading(tmp_path, inputs, loads, capsys):
    out = tmp_path / "out"
    out.mkdir()
    refused(["--models", "random:tiny", "--identity", str(inputs["photo"]), "--driver", str(inputs["video"]),
             "--out", str(out / "o.mp4"), "--fps", "24"], capsys, "--fps", "talk.mp4")
    assert loads == [] and outputs_left(out) == []


def test_a_blendshape_adapter_takes_the_csv_and_the_check_reads_only_the_width(tmp_path, inputs, blendshape_models_dir,
                                                                               tiny_models_dir):
    """The positive side: a 52-input adapter passes the check (the job then goes on to load the models)."""
    import argparse

    from retarget.cli.preload_checks import check_adapter_signal
    from retarget.models.adapters import expression_adapter_kind

    assert expression_adapter_kind(blendshape_models_dir / "exp_adapter" / "exp_adapter.bin") == "blendshapes52"
    assert expression_adapter_kind(tiny_models_dir / "exp_adapter" / "exp_adapter.bin") == "flame55"
    args = argparse.Namespace(out=tmp_path / "o.mp4", side_by_side=None, fps=None, models=str(blendshape_models_dir),
                              exp_adapter=None)
    check_adapter_signal(args, [inputs["csv"]])
    args.models = str(tiny_models_dir)
    check_adapter_signal(args, [inputs["video"]])  # pictures: any adapter
    with pytest.raises(BadInputError, match="FLAME-55"):
        check_adapter_signal(args, [inputs["csv"]])


def test_the_engine_refuses_a_csv_for_the_flame_adapter_before_its_work_folder(tmp_path, inputs):
    """The app's Render goes through the engine, which asks the same rule before it makes the work folder."""
    from retarget.engine.offline import OfflineRenderer
    from retarget.config.mapping import MappingSettings
    from retarget.config.generation import GenerationSettings

    class FlameAnalyzer:  # what make_analyzer returns for the FLAME-55 adapter, without SMIRK
        expression_kind = "flame55"
        mapping = MappingSettings()

        def close(self):
            pass

    out = tmp_path / "out"
    out.mkdir()
    renderer = OfflineRenderer(None, None, FlameAnalyzer, GenerationSettings(), {})
    with pytest.raises(BadInputError, match="FLAME-55"):
        renderer.render(str(inputs["csv"]), out / "o.mp4")
    assert outputs_left(out) == []
