"""`retarget bench`: figures only, nothing asserted.

- `stages` (`retarget bench`): per-stage timings, throughput and live latency per preset, and the
  published demo's structure as a baseline measured in the same run.
- `gpu` (`retarget bench gpu`): everything the performance targets need in one process under a
  time budget (speed, memory, compile/channels_last/batch size, fp16 fidelity, FLOPs), with a
  PASS/MISS table (`report`). The same code path runs on a CPU with `random:tiny`.

Nothing heavy is imported here: the CLI reads the measurement names before it loads torch.
"""

# What `retarget bench gpu --skip` can leave out, in the order they run (most important first).
GPU_MEASUREMENTS = ("perception", "unet", "baseline", "offline", "psnr", "live_tiny_vae", "live", "channels_last",
                    "compiled_live", "compiled_offline")
