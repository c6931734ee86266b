"""Where weights live: the Hugging Face hub (through its cache), local folders, random test sets.

A models folder has the `FoivosPar/Arc2Face` repo's paths at its top, the base model's
`vae/`, `tokenizer/` and `scheduler/` under `sd15/`, and optionally `smirk/SMIRK_em1.pt` and
`face_landmarker.task`. `--models hub` resolves the same files inside the hub cache.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from retarget.weights import downloads
from retarget.cache import user_cache_dir
from retarget.weights.downloads import ARC2FACE_FILES, ARC2FACE_REPO, BASE_FILES, BASE_REPO
from retarget.errors import MissingWeightsError, RetargetError, first_line
from retarget.face.detector import find_antelopev2_detector

SMIRK_HELP = ("SMIRK_em1.pt (from the SMIRK authors' release, georgeretsi/smirk) placed at MODELS/smirk/SMIRK_em1.pt "
              "or given with --smirk; `retarget download --to DIR` fetches it")
FETCH_HINT = "run `retarget download --to DIR` on a machine with internet, then pass --models DIR"


@dataclass(frozen=True)
class ModelFiles:
    """Resolved paths of one model set."""

    unet: Path
    encoder: Path
    arcface: Path
    exp_adapter: Path | None
    ref_lora: Path | None
    vae: Path
    tokenizer: Path
    scheduler: Path
    smirk: Path | None
    landmarker: Path | None
    is_test_model: bool
    description: str
    detector: Path | None = None  # insightface's antelopev2 SCRFD (scrfd_10g_bnkps.onnx)


def _optional(path: Path) -> Path | None:
    return path if path.exists() else None


def _from_layout(arc2face_root: Path, base_root: Path, extras_root: Path | None, is_test: bool, description: str) -> ModelFiles:
    extras_root = extras_root or arc2face_root
    return ModelFiles(
        unet=arc2face_root / "arc2face",
        encoder=arc2face_root / "encoder",
        arcface=arc2face_root / "arcface.onnx",
        exp_adapter=_optional(arc2face_root / "exp_adapter" / "exp_adapter.bin"),
        ref_lora=_optional(arc2face_root / "ref_adapter" / "pytorch_lora_weights.safetensors"),
        vae=base_root / "vae",
        tokenizer=base_root / "tokenizer",
        scheduler=base_root / "scheduler",
        smirk=_optional(extras_root / "smirk" / "SMIRK_em1.pt"),
        landmarker=_optional(extras_root / "face_landmarker.task"),
        is_test_model=is_test,
        description=description,
        detector=find_antelopev2_detector(extras_root),
    )


def _check_required(files: ModelFiles, where: str) -> None:
    required = [
        files.unet / "config.json",
        files.encoder / "config.json",
        files.arcface,
        files.vae / "config.json",
        files.tokenizer / "vocab.json",
        files.scheduler / "scheduler_config.json",
    ]
    missing = [str(p) for p in required if not p.exists()]
    if missing:
        raise MissingWeightsError(f"model files missing in {where}: {', '.join(missing)}; {FETCH_HINT}")


def random_models_cache() -> Path:
    return user_cache_dir() / "testmodels"


def random_models_folder(size: str) -> Path:
    """Where `--models random:SIZE` is built (once) and read from."""
    return random_models_cache() / f"{size}-v1"


def _random_models(size: str, progress) -> ModelFiles:
    from retarget.weights.testmodels import SIZES, write_test_models

    if size not in SIZES:
        raise RetargetError(f"unknown --models random:{size}; choose random:tiny or random:sd15")
    folder = random_models_folder(size)
    if not (folder / "arc2face" / "config.json").exists():
        if folder.exists():
            shutil.rmtree(folder)
        write_test_models(folder, size=size, progress=progress)
    files = _from_layout(folder, folder / "sd15", None, True, f"random:{size} (RANDOM TEST MODEL, output is noise)")
    _check_required(files, str(folder))
    return files


def _hub_models(local_files_only: bool | None, progress=print, tqdm_class=None) -> ModelFiles:
    from huggingface_hub import hf_hub_download, snapshot_download

    def fetch(repo: str, names: tuple[str, ...], offline: bool) -> Path:
        if not offline and tqdm_class is not None:
            # File by file, so each file's bytes reach the caller's progress class (the app's dialog).
            for number, name in enumerate(names, 1):
                progress(f"[{number}/{len(names)}] {repo}/{name}")
                hf_hub_download(repo, name, tqdm_class=tqdm_class)
            offline = True
        return Path(snapshot_download(repo, allow_patterns=list(names), local_files_only=offline))

    try:
        offline = bool(local_files_only)
        try:
            # The cache first, so a machine that fetched once never needs the network again.
            arc2face_root = fetch(ARC2FACE_REPO, ARC2FACE_FILES, True)
            base_root = fetch(BASE_REPO, BASE_FILES, True)
            first_run = False
        except Exception:
            if offline:
                raise
            arc2face_root = fetch(ARC2FACE_REPO, ARC2FACE_FILES, False)
            base_root = fetch(BASE_REPO, BASE_FILES, False)
            first_run = True
    except Exception as err:  # huggingface_hub raises many kinds; all mean "not available here"
        reason = first_line(err)
        raise MissingWeightsError(
            f"the published weights ({ARC2FACE_REPO} + {BASE_REPO}) are not in the Hugging Face cache "
            f"and could not be downloaded ({type(err).__name__}: {reason[:160]}); {FETCH_HINT}"
        ) from None
    # The files that are not on the hub (SMIRK, antelopev2, the landmarker) live in our own cache.
    if first_run:
        _fetch_extras(user_cache_dir(), progress)
    files = _from_layout(arc2face_root, base_root, user_cache_dir(), False, f"hub ({ARC2FACE_REPO})")
    _check_required(files, "the Hugging Face cache")
    return files


def _fetch_extras(folder: Path, progress) -> None:
    """First `hub` run: the non-hub files too; a failure here is a note, since each file's own check explains later."""
    try:
        downloads.fetch(downloads.extras(), folder, progress)
    except MissingWeightsError as err:
        progress(f"note: {err}")


def resolve_models(spec: str = "hub", local_files_only: bool | None = None, progress=print, tqdm_class=None) -> ModelFiles:
    """`hub`, a local folder, or `random:tiny` / `random:sd15` -> ModelFiles.

    `hub` reads the Hugging Face cache, and fetches what is missing unless local_files_only; with
    a `tqdm_class`, each file's bytes are reported to it (huggingface_hub's progress interface).
    """
    from retarget.weights.testmodels import is_test_model

    if spec == "hub":
        return _hub_models(local_files_only, progress, tqdm_class)
    if spec.startswith("random:"):
        return _random_models(spec.split(":", 1)[1], progress)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise MissingWeightsError(f"--models {spec}: no such folder; use `hub`, a models folder, or random:tiny")
    test = is_test_model(folder)
    description = f"{folder}" + (" (RANDOM TEST MODEL, output is noise)" if test else "")
    files = _from_layout(folder, folder / "sd15", folder, test, description)
    _check_required(files, str(folder))
    return files


def expression_adapter_before_loading(spec: str, exp_adapter: Path | None = None) -> tuple[str | None, Path | None]:
    """(kind, file) of the Expression Adapter a model set would load, found without fetching, building or loading
    any weights (the file's input width says the kind); (None, None) where that cannot be known yet."""
    from retarget.models.adapters import EXPRESSION_KINDS, expression_adapter_kind

    if exp_adapter is not None:
        path = Path(exp_adapter).expanduser()
        return (expression_adapter_kind(path), path) if path.is_file() else (None, None)
    if spec.startswith("random:"):
        from retarget.weights.testmodels import DEFAULT_EXP_DIM

        path = random_models_folder(spec.split(":", 1)[1]) / "exp_adapter" / "exp_adapter.bin"
        # A random set not built yet will be written with the default width.
        return (expression_adapter_kind(path), path) if path.is_file() else (EXPRESSION_KINDS[DEFAULT_EXP_DIM], None)
    try:
        files = resolve_models(spec, local_files_only=True, progress=lambda line: None)
    except Exception:  # not on disk yet (hub), or a models problem the loader will report in full
        return None, None
    if files.exp_adapter is None:
        return None, None
    return expression_adapter_kind(files.exp_adapter), files.exp_adapter


def download_models(to: Path, progress=print, tqdm_class=None) -> Path:
    """Fetch every file of the published pipeline into a models folder (see retarget.weights.downloads).

    huggingface_hub shows progress bars, or reports each file's bytes to `tqdm_class` (the app's
    download dialog)."""
    to = Path(to).expanduser()
    downloads.fetch(downloads.everything(), to, progress, network=downloads.Network(tqdm_class=tqdm_class))
    return to
