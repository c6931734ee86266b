"""Live frames/s of two commits of retarget, paired in one run on this machine: a ratio, not a time.

    python docs/benchmarks/live_ratio.py --before e4341ac [--after WORKTREE] [--rounds 4] [--frames 24]

Both versions are loaded once, each in its own process, on the same random:tiny models and LCM-LoRA, and
warmed up; then each round times `--frames` frames one at a time (batch 1, as the live engine calls the
generator) at each preset given, in one version and then the other (the order alternates per round). The
printed ratio is the median over rounds of after/before within a round, so a machine shared with other work
moves both alike.
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
from retarget.weights.assets import resolve_models
from retarget.pipeline import RetargetPipeline
from retarget.config.generation import preset_settings
models, lcm, frames, presets = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
pipe = RetargetPipeline.from_files(resolve_models(models), "cpu")
pipe.load_lcm_lora(lcm)
rng = np.random.default_rng(0)
e = rng.normal(size=512).astype(np.float32)
ctx = pipe.prepare_identity(e / np.linalg.norm(e), rng.integers(0, 256, (pipe.image_size, pipe.image_size, 3), dtype=np.uint8))
exps = (rng.normal(size=(frames, pipe.exp_dim)) * 0.3).astype(np.float32)
for name in presets:
    pipe.generate(ctx, exps[:1], preset_settings(name))  # warm-up
print("ready", flush=True)
for line in sys.stdin:  # one line per round: time `frames` frames of each preset, answer with frames/s
    out = {}
    for name in presets:
        settings = preset_settings(name)
        start = time.perf_counter()
        for i in range(frames):
            pipe.generate(ctx, exps[i:i + 1], settings)
        out[name] = frames / (time.perf_counter() - start)
    print(json.dumps(out), flush=True)
"""


def export(commit: str, into: Path) -> Path:
    """The `retarget` package of a commit, from git (no checkout touched)."""
    data = subprocess.run(["git", "archive", "--format=tar", commit, "retarget"], cwd=ROOT, capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


class Worker:
    """One version loaded once in its own process; each round() times `frames` frames there."""

    def __init__(self, tree: Path, models: Path, lcm: Path, frames: int, presets: str):
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        self.process = subprocess.Popen([sys.executable, "-c", MEASURE, str(models), str(lcm), str(frames), presets],
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the worker for {tree} did not start")

    def round(self) -> dict:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--after", type=Path, default=ROOT, help="the tree measured as 'after' (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--presets", default="lcm,fast")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--structure", action="store_true",
                        help="SD 1.5's UNet module tree at narrow widths (retarget.tools.benchmark.counts) instead of random:tiny")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from retarget.weights.testmodels import write_lcm_lora, write_test_models

    with tempfile.TemporaryDirectory(prefix="retarget-live-ratio-") as work:
        work = Path(work)
        before = export(args.before, work / "before")
        if args.structure:
            from retarget.tools.benchmark.counts import write_structure_models

            models, lcm = write_structure_models(work / "models")
        else:
            models = write_test_models(work / "models", "tiny", progress=lambda line: None)
            lcm = write_lcm_lora(work / "lcm", models)
        runs = {"before": [], "after": []}
        workers = {side: Worker(tree, models, lcm, args.frames, args.presets)
                   for side, tree in (("before", before), ("after", args.after))}
        try:
            for r in range(args.rounds):
                for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
                    runs[side].append(workers[side].round())
                    print(f"round {r + 1} {side}: " + ", ".join(f"{k} {v:.2f} frames/s" for k, v in runs[side][-1].items()),
                          flush=True)
        finally:
            for worker in workers.values():
                worker.close()
    result = {"before": args.before, "rounds": args.rounds, "frames": args.frames, "runs": runs, "ratio": {}}
    for name in args.presets.split(","):
        ratio = statistics.median(a[name] / b[name] for a, b in zip(runs["after"], runs["before"]))
        result["ratio"][name] = ratio
        print(f"{name}: after/before = {ratio:.2f}x (median of {args.rounds} paired rounds, "
              f"{'SD 1.5 structure' if args.structure else 'random:tiny'}, batch 1)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
