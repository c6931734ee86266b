from __future__ import annotations

import json

from retarget.tools.evaluation import main


def test_eval_on_real_photos(shared_dir, landmarker_path, tmp_path, capsys):
    media = shared_dir / "media"
    common = ["--models", "random:tiny", "--landmarker", str(landmarker_path)]
    exp1, exp3, photo = media / "expression_exp1_rgba.png", media / "expression_exp3_rgba.png", media / "identity_freeman.jpg"
    assert main(["--identity", str(exp1), "--driver", str(exp1), "--output", str(exp1), "--json", str(tmp_path / "self.json"), *common]) == 0
    same = json.loads((tmp_path / "self.json").read_text())["results"][0]
    assert same["expression_error"] == 0.0 and abs(same["id_similarity"] - 1.0) < 1e-4
    assert set(same["region_error"]) >= {"brows", "eyes", "mouth", "jaw"}
    assert main(["--identity", str(photo), "--driver", str(exp1), "--output", str(exp3), "--json", str(tmp_path / "diff.json"), *common]) == 0
    diff = json.loads((tmp_path / "diff.json").read_text())["results"][0]
    assert diff["expression_error"] > 0.02
    table = capsys.readouterr().out
    assert "ID sim" in table and "exp err" in table


def test_eval_pairs_and_video_jitter(shared_dir, landmarker_path, tmp_path, capsys):
    media = shared_dir / "media"
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps([
        {"identity": str(media / "identity_freeman.jpg"), "driver": str(media / "driver_d0.mp4"), "output": str(media / "driver_d0.mp4")},
        [str(media / "identity_freeman.jpg"), str(media / "identity_freeman.jpg"), str(media / "identity_freeman.jpg")],
    ]))
    rc = main(["--pairs", str(pairs), "--models", "random:tiny", "--landmarker", str(landmarker_path), "--every", "6",
               "--json", str(tmp_path / "r.json")])
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text())
    video = report["results"][0]
    assert video["frames"] == 13 and video["expression_error"] == 0.0
    assert video["jitter"] > 0 and abs(video["jitter_ratio"] - 1.0) < 1e-9
    assert report["summary"]["pairs"] == 2


def test_eval_bad_input_is_one_line(tmp_path, capsys):
    rc = main(["--identity", str(tmp_path / "x.png"), "--driver", "d.png", "--output", "o.png", "--models", "random:tiny"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


def test_eval_refuses_clips_of_different_length(tmp_path, shared_dir, landmarker_path, tiny_models_dir, capsys):
    from retarget.tools.evaluation import main
    from tests.conftest import cut_clip

    video = shared_dir / "media" / "driver_d0.mp4"
    driver, output = cut_clip(video, tmp_path / "d.mp4", 3), cut_clip(video, tmp_path / "o.mp4", 2)
    code = main(["--models", str(tiny_models_dir), "--landmarker", str(landmarker_path),
                 "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"),
                 "--driver", str(driver), "--output", str(output)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "has 2 frames but its driver" in err and len(err.splitlines()) == 1
