"""The command line's first seconds: a line per loading stage with the time since the command began (stderr),
then one summary with one total time, naming every output (the side-by-side video too), with no process column
for a job that ran in one process."""

from __future__ import annotations

import re

from retarget.cli import main
from tests.conftest import cut_clip, needs_shared

STAGE = re.compile(r"^\[\s*\d+\.\d s\] ")


@needs_shared
def test_headless_video_prints_its_stages_and_one_total(tmp_path, tiny_models_dir, shared_dir, landmarker_path, capsys):
    media = shared_dir / "media"
    clip = cut_clip(media / "driver_d0.mp4", tmp_path / "clip.mp4", frames=6)
    out, side = tmp_path / "out.mp4", tmp_path / "side.mp4"
    code = main(["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "1",
                 "--identity", str(media / "identity_hepburn_small.png"), "--driver", str(clip), "--out", str(out),
                 "--side-by-side", str(side)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    stages = [line for line in captured.err.splitlines() if STAGE.match(line)]
    names = [STAGE.sub("", line) for line in stages]
    assert names[0].startswith("loading the models") and names[0].endswith("...")
    assert names[1].startswith("loading the models") and re.search(r": done \(\d+\.\d s\)$", names[1])
    assert names[2].startswith("embedding the identity (identity_hepburn_small.png)")
    assert any(name == "rendering" for name in names)
    times = [float(STAGE.match(line).group(0).strip("[] s")) for line in stages]
    assert times == sorted(times)  # each line's time is since the command began
    out_lines = captured.out.strip().splitlines()
    totals = [line for line in out_lines if line.startswith("done in ")]
    assert len(totals) == 1 and f"wrote {out} and side by side {side}" in totals[0] and "in all" in totals[0]
    header = out_lines[0].split()
    assert "process" not in header and "seconds" not in header
    assert out.is_file() and side.is_file()
