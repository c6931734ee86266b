"""Live frames/s of two commits of retarget, paired in one run on this machine: a ratio, not a time.

    python docs/benchmarks/live_ratio.py --before e4341ac [--after WORKTREE] [--rounds 4] [--frames 24]

Each round runs both versions one after the other (the order alternates per round), each in its own
process on the same random:tiny models and LCM-LoRA: load, one warm-up frame, then `--frames` frames one at
a time (batch 1, as the live engine calls the generator) at each preset given. The printed ratio is
after/before of the median over rounds, so a machine shared with other work moves both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

MEASURE = r"""
import json, sys, time
import numpy as np
from retarget.assets import resolve_models
from retarget.pipeline import RetargetPipeline
from retarget.settings import preset_settings
models, lcm, frames, presets = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
pipe = RetargetPipeline.from_files(resolve_models(models), "cpu")
pipe.load_lcm_lora(lcm)
rng = np.random.default_rng(0)
e = rng.normal(size=512).astype(np.float32)
ctx = pipe.prepare_identity(e / np.linalg.norm(e), rng.integers(0, 256, (pipe.image_size, pipe.image_size, 3), dtype=np.uint8))
exps = (rng.normal(size=(frames, pipe.exp_dim)) * 0.3).astype(np.float32)
out = {}
for name in presets:
    settings = preset_settings(name)
    pipe.generate(ctx, exps[:1], settings)
    start = time.perf_counter()
    for i in range(frames):
        pipe.generate(ctx, exps[i:i + 1], settings)
    out[name] = frames / (time.perf_counter() - start)
print(json.dumps(out))
"""


def export(commit: str, into: Path) -> Path:
    """The `retarget` package of a commit, from git (no checkout touched)."""
    data = subprocess.run(["git", "archive", "--format=tar", commit, "retarget"], cwd=ROOT, capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(tree: Path, models: Path, lcm: Path, frames: int, presets: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(models), str(lcm), str(frames), presets], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--after", type=Path, default=ROOT, help="the tree measured as 'after' (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--presets", default="lcm,fast")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from retarget.testmodels import write_lcm_lora, write_test_models

    with tempfile.TemporaryDirectory(prefix="retarget-live-ratio-") as work:
        work = Path(work)
        before = export(args.before, work / "before")
        models = write_test_models(work / "models", "tiny", progress=lambda line: None)
        lcm = write_lcm_lora(work / "lcm", models)
        runs = {"before": [], "after": []}
        trees = {"before": before, "after": args.after}
        for r in range(args.rounds):
            for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
                runs[side].append(measure(trees[side], models, lcm, args.frames, args.presets))
                print(f"round {r + 1} {side}: " + ", ".join(f"{k} {v:.2f} frames/s" for k, v in runs[side][-1].items()),
                      flush=True)
    result = {"before": args.before, "rounds": args.rounds, "frames": args.frames, "runs": runs, "ratio": {}}
    for name in args.presets.split(","):
        b = statistics.median(run[name] for run in runs["before"])
        a = statistics.median(run[name] for run in runs["after"])
        result["ratio"][name] = a / b
        print(f"{name}: after/before = {a / b:.2f}x (median of {args.rounds} paired rounds, random:tiny, batch 1)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
