#!/usr/bin/env bash
# `retarget bench gpu` on a CUDA machine without network, in one command (docs/benchmarks/README.md
# says how to call it through the device tool). It installs the carried wheels from .whl/ (diffusers and
# what the machine lacks for it), then measures everything the performance targets need on random:sd15
# in fp16 within the run's time budget, and writes under $OUT:
#   gpu-bench.json  every figure, device, driver and versions (rewritten after each measurement)
#   gpu-bench.txt   the printed table with each target's PASS/MISS
#   gpu-bench.log   progress and skipped/failed measurements
#   nvidia-smi.txt  the GPU as the driver reports it
# Extra arguments go to `retarget bench gpu` (e.g. --budget 400 or --skip channels_last).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out/gpu-bench}"
mkdir -p "$OUT"

if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu.sh: installing the carried wheels from .whl/ failed" >&2; exit 1; }
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD:$PYTHONPATH"  # this checkout's retarget, not installed there
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "gpu.sh: nvidia-smi failed (see $OUT/nvidia-smi.txt)" >&2
python3 -c "import diffusers, torch; print('diffusers', diffusers.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  || { echo "gpu.sh: diffusers or torch does not import; were the wheels carried (carry=[\".whl\"])?" >&2; exit 1; }

# The bench keeps its own budget (--budget, default 450 s); the hard stop at 8 minutes leaves the figures measured so far in the JSON.
timeout 480 python3 -m retarget bench gpu --models random:sd15 --device cuda --dtype fp16 --json "$OUT/gpu-bench.json" "$@" \
  > "$OUT/gpu-bench.txt" 2> "$OUT/gpu-bench.log"
status=$?
grep -v -i warn "$OUT/gpu-bench.log" | tail -n 40 >&2
if [ "$status" -ne 0 ] && [ -s "$OUT/gpu-bench.json" ]; then
  echo "gpu.sh: the bench stopped (exit $status); the table below is from the figures it had written" >&2
  python3 -c "import json, sys; from retarget.benchmark.report import format_gpu_table; print(format_gpu_table(json.load(open(sys.argv[1]))))" \
    "$OUT/gpu-bench.json" > "$OUT/gpu-bench.txt"
fi
cat "$OUT/gpu-bench.txt"
exit "$status"
