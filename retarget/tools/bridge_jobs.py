"""Calibrating the expression bridge: the library entry points the CLI (`retarget bridge fit`) and the app call.

`fit_bridge_from_videos` (MediaPipe + SMIRK on the same frames; cheap on a CPU) and
`fit_bridge_from_renders` (analysis by synthesis through the generator; no video, no SMIRK) both
check everything first (the adapter is FLAME-55, the output may be written), gather pairs with
progress(done, total) and cancel() -> True (JobInterrupted), fit (retarget.expression.bridge_fit),
and save the bridge where the loader finds it (default: the cache keyed by the adapter's content).
"""

from __future__ import annotations

import time
from pathlib import Path

from retarget.errors import BadInputError, OutputError
from retarget.expression.bridge import ExpressionBridge, adapter_sha256, default_output

BLENDSHAPE_ADAPTER = ("the Expression Adapter {path} takes {width} blendshape values, which drivers give directly: "
                      "blendshape adapters need no bridge (it is for FLAME-55 adapters)")


def adapter_input_width(path) -> int:
    """How many values an Expression Adapter file takes (the width of its first projection), read without a UNet."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return int(handle.get_slice("image_proj.proj.0.weight").get_shape()[1])
        except Exception as err:
            raise BadInputError(f"{path}: not an Expression Adapter ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    from retarget.errors import load_tensor_file

    state = load_tensor_file(path, "Expression Adapter")
    try:
        return int(state["image_proj"]["proj.0.weight"].shape[1])
    except (KeyError, TypeError, IndexError, AttributeError):
        raise BadInputError(f"{path}: not an Expression Adapter (no image_proj/proj.0.weight)") from None


def flame_adapter_of(files, exp_adapter=None) -> Path:
    """The FLAME-55 adapter file a bridge is for; a one-line refusal for blendshape adapters or none at all."""
    path = Path(exp_adapter) if exp_adapter is not None else files.exp_adapter
    if path is None:
        raise BadInputError(f"{files.description} has no Expression Adapter (exp_adapter/exp_adapter.bin); a bridge is fitted "
                            "for one: pass --exp-adapter FILE")
    if not Path(path).is_file():
        raise BadInputError(f"Expression Adapter {path}: no such file")
    width = adapter_input_width(path)
    if width != 55:
        raise BadInputError(BLENDSHAPE_ADAPTER.format(path=path, width=width))
    return Path(path)


def check_bridge_output(out, inputs=()) -> Path:
    """A bridge may be written at `out`: not an input, writable, and not over a file that is not a bridge."""
    from retarget.outputs import check_file_output

    target = check_file_output(out, list(inputs))
    if target.exists():
        try:
            ExpressionBridge.load(target)
        except BadInputError:
            raise OutputError(f"--out {out}: exists and is not an expression bridge, so it is not replaced; "
                              "choose another file name") from None
    return target


def model_files(models):
    from retarget.weights.assets import resolve_models

    return resolve_models(models, progress=lambda line: None) if isinstance(models, str) else models


def fit_bridge_from_videos(videos, *, models="hub", exp_adapter=None, landmarker=None, smirk=None, device="cpu",
                           out=None, every: int = 1, max_frames=None, progress=None, cancel=None) -> tuple[ExpressionBridge, Path]:
    """Fit from MediaPipe + SMIRK on the videos' frames; returns the bridge and where it was written.

    models: a models spec (hub, folder, random:tiny) or ModelFiles; smirk: SMIRK_em1.pt or a loaded SmirkExtractor.
    """
    from retarget.tools.bridge_data import video_pairs
    from retarget.expression.bridge_fit import fit_bridge
    from retarget.face.landmarker import landmarker_for
    from retarget.names.kinds import is_webcam_spec

    files = model_files(models)
    adapter = flame_adapter_of(files, exp_adapter)
    for video in videos:
        if is_webcam_spec(str(video)):
            raise BadInputError(f"{video}: record the webcam to a file first (the app's Record, or any recorder), then fit from it")
        if not Path(video).exists():
            raise BadInputError(f"{video}: no such file")
    videos = [Path(v) for v in videos]
    started = time.perf_counter()
    sha = adapter_sha256(adapter)
    out = Path(out) if out is not None else default_output(adapter)
    check_bridge_output(out, [(f"--videos {v}", v) for v in videos])
    encoder = _smirk_encoder(smirk, files, device)
    landmarker_path = landmarker_for(landmarker, files)
    gathered = video_pairs(videos, landmarker_path, encoder, every=every, max_frames=max_frames, progress=progress, cancel=cancel)
    data = {"files": gathered.files, "every": every, "frames_looked_at": gathered.looked_at}
    extra = {"faces_missed": gathered.faces_missed, "adapter": str(adapter),
             "wall_seconds": round(time.perf_counter() - started, 1)}
    bridge = fit_bridge(gathered.pairs, sha, "videos", data, extra_report=extra)
    return bridge, bridge.save(out)


def _smirk_encoder(smirk, files, device):
    from retarget.weights.assets import SMIRK_HELP
    from retarget.errors import MissingWeightsError
    from retarget.face.smirk import SmirkExtractor
    from retarget.pipeline import pick_device

    if smirk is not None and not isinstance(smirk, (str, Path)):
        return smirk
    path = smirk or files.smirk
    if path is None:
        raise MissingWeightsError(f"fitting from videos needs the SMIRK encoder: {SMIRK_HELP} (or fit with --renders N)")
    return SmirkExtractor(path, device=str(pick_device(device) if isinstance(device, str) else device))


def default_work_folder(sha256: str) -> Path:
    from retarget.cache import user_cache_dir

    return user_cache_dir() / "bridges" / f"{sha256[:16]}-renders"


def fit_bridge_from_renders(samples: int, *, models="hub", exp_adapter=None, landmarker=None, device="auto", dtype=None,
                            settings=None, out=None, work=None, batch_size: int = 8, seed: int = 0, prior=None,
                            pipeline=None, renderer=None, progress=None, cancel=None) -> tuple[ExpressionBridge, Path]:
    """Fit from the generator's own renders (analysis by synthesis); returns the bridge and where it was written.

    pipeline: an already loaded RetargetPipeline with this adapter (the app's: pass the exp_adapter it loaded), else
    one is loaded without the Reference Adapter (random people have no photo);
    renderer: a stand-in (identities, flame, indices) -> images, for tests; prior: a FlamePrior (default: the
    documented per-group distribution); work: the resumable work folder (default in the cache, by adapter).
    """
    from retarget.tools.bridge_data import generator_renderer, synthesis_pairs
    from retarget.expression.bridge_fit import fit_bridge
    from retarget.face.landmarker import landmarker_for

    files = model_files(models)
    adapter = flame_adapter_of(files, exp_adapter)
    if samples < 1 or batch_size < 1:
        raise BadInputError(f"--renders and --batch-size must be at least 1 (got {samples}, {batch_size})")
    sha = adapter_sha256(adapter)
    out = Path(out) if out is not None else default_output(adapter)
    check_bridge_output(out)
    work = Path(work) if work is not None else default_work_folder(sha)
    landmarker_path = landmarker_for(landmarker, files)
    device_name = "stand-in renderer"
    if renderer is None:
        if pipeline is None:
            from retarget.pipeline import RetargetPipeline, pick_device, pick_dtype

            torch_device = pick_device(device) if isinstance(device, str) else device
            torch_dtype = pick_dtype(dtype, torch_device) if isinstance(dtype, str) else dtype
            pipeline = RetargetPipeline.from_files(files, torch_device, torch_dtype, exp_adapter=adapter, use_ref_lora=False)
        if pipeline.expression_kind != "flame55":
            raise BadInputError("the loaded generator's Expression Adapter does not take FLAME-55 values; load the adapter "
                                "the bridge is for")
        renderer = generator_renderer(pipeline, settings)
        device_name = _describe_device(pipeline.device)
    started = time.perf_counter()
    gathered = synthesis_pairs(renderer, landmarker_path, samples, work, sha, prior=prior, batch_size=batch_size,
                               seed=seed, progress=progress, cancel=cancel,
                               job={"settings": settings_text(settings) if device_name != "stand-in renderer" else device_name})
    if len(gathered.pairs) == 0:
        raise BadInputError(f"MediaPipe found no face in any of the {gathered.looked_at} renders, so there is nothing to fit "
                            f"({'random test models render noise' if files.is_test_model else 'check the models'}); "
                            f"the renders are kept in {work}")
    from retarget.expression.flame_prior import FlamePrior

    data = {"prior": (prior or FlamePrior.default()).description, "work": str(work), "seed": seed,
            "settings": settings_text(settings), "rendered_now": gathered.rendered_now}
    extra = {"faces_missed": gathered.faces_missed, "seconds_per_1000": gathered.seconds_per_1000, "device": device_name,
             "adapter": str(adapter), "wall_seconds": round(time.perf_counter() - started, 1)}
    bridge = fit_bridge(gathered.pairs, sha, "renders", data, extra_report=extra)
    return bridge, bridge.save(out)


def _describe_device(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    import platform

    return f"{device.type} ({platform.processor() or platform.machine()})"


def settings_text(settings) -> str:
    from retarget.config.generation import GenerationSettings

    s = settings or GenerationSettings()
    return f"steps {s.steps}, cfg {s.cfg}, exp_scale {s.exp_scale}, sampler {s.sampler}, no reference photo"


def prior_from_videos(videos, *, models="hub", landmarker=None, smirk=None, device="cpu", every: int = 1,
                      progress=None, cancel=None):
    """A FlamePrior of SMIRK's values on the videos' frames (for fit_bridge_from_renders)."""
    from retarget.tools.bridge_data import video_pairs
    from retarget.expression.flame_prior import FlamePrior
    from retarget.face.landmarker import landmarker_for

    files = model_files(models)
    gathered = video_pairs(videos, landmarker_for(landmarker, files), _smirk_encoder(smirk, files, device), every=every,
                           progress=progress, cancel=cancel)
    if len(gathered.pairs) == 0:
        raise BadInputError("no face found in the --prior-videos frames; give videos of a face, or leave --prior-videos out")
    return FlamePrior.from_values(gathered.pairs.flame, f"SMIRK's values on frames of {', '.join(gathered.files)}")
