#!/usr/bin/env bash
# `retarget bench gpu` on a CUDA machine without network, in one command (docs/benchmarks/README.md
# says how to call it through the device tool). It installs the carried wheels from .whl/ (diffusers and
# what the machine lacks for it), then measures everything the performance targets need on random:sd15
# in fp16 within the run's time budget, and writes under $OUT:
#   gpu-bench-compiled-offline.{json,txt,log}  run 1: the compiled offline quality run alone
#   gpu-bench-rest.{json,txt,log}              run 2: everything else the targets read
#   (.json every figure, device, driver and versions, rewritten after each measurement; .txt the table with
#   each target's PASS/MISS; .log progress and skipped/failed measurements)
#   nvidia-smi.txt  the GPU as the driver reports it
# Extra arguments go to both runs of `retarget bench gpu` (e.g. --batch-sizes 8). GPU_SH_DRY_RUN=1 prints the two
# commands instead of running anything (a check on any machine); GPU_SH_FIRST_S / GPU_SH_REST_S set their seconds.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out/gpu-bench}"
mkdir -p "$OUT"
if [ -n "${GPU_SH_DRY_RUN:-}" ]; then  # the two commands only: no wheels, no GPU needed
  stage_dry=1
fi

if [ -z "${stage_dry:-}" ] && compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu.sh: installing the carried wheels from .whl/ failed" >&2; exit 1; }
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's retarget, not installed there
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ -z "${stage_dry:-}" ]; then
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "gpu.sh: nvidia-smi failed (see $OUT/nvidia-smi.txt)" >&2
python3 -c "import diffusers, torch; print('diffusers', diffusers.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  || { echo "gpu.sh: diffusers or torch does not import; were the wheels carried (carry=[\".whl\"])?" >&2; exit 1; }
fi

# Two runs, each with its own budget and a hard stop (`timeout -k`: TERM, then KILL 10 s later), each
# printing its table even when cut (from the JSON it rewrites after every measurement):
#  1. the compiled offline quality run first: the likeliest 8 frames/s, measured before anything can eat the time;
#  2. everything else the targets read, without the eager live runs they do not read (the compiled live run
#     and offline quality at batch 1 give the live and memory figures).
FIRST_S="${GPU_SH_FIRST_S:-230}"   # seconds for run 1 (model build + compile + timing)
REST_S="${GPU_SH_REST_S:-330}"     # seconds for run 2
ALL="perception,unet,baseline,offline,psnr,live_tiny_vae,live,channels_last,compiled_live,compiled_offline"
skip_but() { echo "$ALL" | tr ',' '\n' | grep -v -x -F -f <(echo "$1" | tr ',' '\n') | paste -sd, -; }

overall=0
stage() {  # stage NAME SECONDS SKIP [extra args]
  local name="$1" seconds="$2" skip="$3"; shift 3
  local cmd=(timeout -k 10 "$seconds" python3 -m retarget bench gpu --models random:sd15 --device cuda --dtype fp16
             --budget "$((seconds - 25))" --skip "$skip" --json "$OUT/gpu-bench-$name.json" "$@")
  if [ -n "${GPU_SH_DRY_RUN:-}" ]; then echo "${cmd[*]}"; return 0; fi
  "${cmd[@]}" > "$OUT/gpu-bench-$name.txt" 2> "$OUT/gpu-bench-$name.log"
  local status=$?
  grep -v -i warn "$OUT/gpu-bench-$name.log" | tail -n 25 >&2
  if [ "$status" -ne 0 ]; then
    overall="$status"
    if [ -s "$OUT/gpu-bench-$name.json" ]; then
      echo "gpu.sh: run '$name' stopped (exit $status); its table is from the figures it had written" >&2
      python3 -c "import json, sys; from retarget.tools.benchmark.report import format_gpu_table; print(format_gpu_table(json.load(open(sys.argv[1]))))" \
        "$OUT/gpu-bench-$name.json" > "$OUT/gpu-bench-$name.txt"
    else
      echo "gpu.sh: run '$name' stopped (exit $status) before writing any figure" > "$OUT/gpu-bench-$name.txt"
    fi
  fi
  echo "== $name =="; cat "$OUT/gpu-bench-$name.txt"
}

stage compiled-offline "$FIRST_S" "$(skip_but compiled_offline)" "$@"
stage rest "$REST_S" "compiled_offline,live,live_tiny_vae" "$@"
exit "$overall"
