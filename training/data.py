"""The annotated dataset: layout, reading, and per-step batch sampling.

Layout written by `python -m training.annotate` (DATA/):

    manifest.jsonl          one JSON object per line, appended only:
                            {"type": "sample", "id", "source", "clip", "frame", "shard", "row", "crop"}
                            {"type": "source", "source", "clip", "kind", "samples", "skipped", "shard"}
                            (a source's "source" record comes after its samples: it marks it done)
    shards/<clip>.npz       per source: blendshapes (N, 52), arcface (N, 512), frames (N,), flame (N, 55) if SMIRK ran
    crops/<clip>/<frame>.png  512x512 FFHQ-aligned crops

Batches are a pure function of (seed, step, process): a resumed run sees exactly the batches
that a straight run would have.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from retarget.errors import BadInputError, first_line

MANIFEST = "manifest.jsonl"
EXP_KINDS = {"blendshapes52": 52, "blendshapes51": 51, "flame55": 55}


def read_manifest(root: Path) -> tuple[list[dict], dict[str, dict]]:
    """(sample records of finished sources, {source path: source record})."""
    path = Path(root) / MANIFEST
    samples: list[dict] = []
    sources: dict[str, dict] = {}
    if not path.is_file():
        return samples, sources
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: is not a text manifest (corrupt?); annotate the data again into a new folder") from None
    needed = {"source": ("source", "clip"), "sample": ("id", "clip", "frame", "shard", "row", "crop")}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except RecursionError:
            raise BadInputError(f"{path}: line {number} is nested too deeply to be a manifest record (corrupt manifest); "
                                f"annotate the data again into a new folder") from None
        except json.JSONDecodeError:
            if number == len(lines):
                continue  # the last line cut short by a crash: its source has no "source" record and is redone
            raise BadInputError(f"{path}: line {number} is not valid JSON (corrupt manifest); "
                                f"annotate the data again into a new folder") from None
        kind = record.get("type") if isinstance(record, dict) else None
        if kind not in needed or any(key not in record for key in needed[kind]):
            raise BadInputError(f"{path}: line {number} is not a manifest record (corrupt manifest); "
                                f"annotate the data again into a new folder")
        for key in ("id", "clip", "source"):
            if key in record and not isinstance(record[key], str):
                raise BadInputError(f"{path}: line {number}: the {key} is {record[key]!r}, not text (corrupt manifest); "
                                    f"annotate the data again into a new folder")
        if kind == "source":
            sources[record["source"]] = record
        else:
            samples.append(record)
    done_clips = {record["clip"] for record in sources.values()}
    # Samples of a source that never finished (no "source" record) are ignored; a rerun redoes it.
    unique: dict[str, dict] = {}
    for record in samples:
        if record["clip"] in done_clips:
            unique[record["id"]] = record
    return list(unique.values()), sources


def _inside_dataset(root: Path, value, what: str, record: dict) -> Path:
    """A manifest path (crop, shard): a relative path to a file inside the dataset, never outside it."""
    if not isinstance(value, str) or not value:
        raise BadInputError(f"--data {root}: sample {record.get('id')!r} has a {what} that is not a path ({value!r}) "
                            f"(corrupt manifest); annotate that source again")
    path = (root / value).resolve()
    if Path(value).is_absolute() or root.resolve() not in path.parents:
        raise BadInputError(f"--data {root}: sample {record.get('id')!r} names the {what} {value}, outside the dataset "
                            f"(corrupt or foreign manifest); annotate the data again")
    if not path.is_file():
        raise BadInputError(f"--data {root}: sample {record.get('id')!r}: its {what} {value} is missing; "
                            f"annotate that source again")
    return path


def check_record(root: Path, record: dict) -> None:
    """A sample record's fields have their types (clip and id text, frame and row whole numbers) and its files exist
    inside the dataset: checked before any training, so a bad one is one line, not a worker's traceback."""
    for key in ("id", "clip"):
        if not isinstance(record[key], str):
            raise BadInputError(f"--data {root}: a sample's {key} is {record[key]!r}, not text (corrupt manifest); "
                                f"annotate that source again")
    for key in ("frame", "row"):
        if not isinstance(record[key], int) or isinstance(record[key], bool) or record[key] < 0:
            raise BadInputError(f"--data {root}: sample {record['id']!r} has {key} {record[key]!r}, not a whole number "
                                f"(corrupt manifest); annotate that source again")
    _inside_dataset(root, record["shard"], "shard", record)
    _inside_dataset(root, record["crop"], "crop", record)


def _check_shard(root: Path, name: str, shard: dict, exp_kind: str) -> None:
    """Widths the trainer expects and finite values: a NaN would only show up as a NaN loss, after the run began."""
    widths = {"arcface": 512, "blendshapes": 52, **({"flame": 55} if exp_kind == "flame55" else {})}
    for key, width in widths.items():
        values = shard.get(key)
        if values is None:
            continue
        if values.ndim != 2 or values.shape[1] != width:
            raise BadInputError(f"--data {root}: {name} holds {key} of shape {tuple(values.shape)}, not (N, {width}) "
                                f"(a shard of another kind); annotate that source again")
        if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
            raise BadInputError(f"--data {root}: {name} holds NaN/inf (or non-numeric) {key} values; "
                                f"annotate that source again")


@dataclass
class Sample:
    id: str
    clip: str
    frame: int
    crop: Path
    arcface: np.ndarray
    expression: np.ndarray


class FaceDataset:
    """All samples of DATA with the expression kind the adapter speaks."""

    @staticmethod
    def check_folder(root) -> None:
        """Cheap checks before any model loads: the folder and its manifest exist and list samples."""
        root = Path(root)
        if not root.exists():
            raise BadInputError(f"--data {root}: no such folder")
        if not (root / MANIFEST).is_file():
            raise BadInputError(f"--data {root}: no {MANIFEST} (make one with `python -m training.annotate SRC --out {root}`)")
        if not read_manifest(root)[0]:
            raise BadInputError(f"--data {root}: the dataset has no samples")

    def __init__(self, root, exp_kind: str = "blendshapes52", image_size: int = 512):
        root = Path(root)
        self.check_folder(root)
        if exp_kind not in EXP_KINDS:
            raise BadInputError(f"unknown expression kind {exp_kind!r}; choose from {', '.join(EXP_KINDS)}")
        records, _ = read_manifest(root)
        if not records:
            raise BadInputError(f"--data {root}: the dataset has no samples")
        self.root, self.exp_kind, self.image_size = root, exp_kind, image_size
        shards: dict[str, dict] = {}
        self.samples: list[Sample] = []
        for record in records:
            check_record(root, record)
        for record in sorted(records, key=lambda r: (r["clip"], r["frame"])):
            shard = shards.get(record["shard"])
            if shard is None:
                try:
                    with np.load(root / record["shard"]) as data:
                        shard = shards[record["shard"]] = {k: data[k] for k in data.files}
                except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
                    raise BadInputError(f"--data {root}: cannot read {record['shard']} ({first_line(err)}); "
                                        f"annotate that source again") from None
                _check_shard(root, record["shard"], shard, exp_kind)
            row = record["row"]
            rows = len(shard.get("arcface", ()))
            if not isinstance(row, int) or not 0 <= row < rows or len(shard.get("blendshapes", ())) != rows:
                raise BadInputError(f"--data {root}: sample {record['id']} points at row {row} of {record['shard']}, "
                                    f"which has {rows} rows (corrupt manifest or shard); annotate that source again")
            if exp_kind == "flame55":
                if "flame" not in shard:
                    raise BadInputError(f"--data {root}: no FLAME-55 values (annotate with --smirk PATH for a flame55 adapter)")
                expression = shard["flame"][row]
            elif exp_kind == "blendshapes51":
                expression = shard["blendshapes"][row][1:]
            else:
                expression = shard["blendshapes"][row]
            self.samples.append(Sample(record["id"], record["clip"], int(record["frame"]), root / record["crop"],
                                       shard["arcface"][row].astype(np.float32), expression.astype(np.float32)))
        self.by_clip: dict[str, list[int]] = {}
        for index, sample in enumerate(self.samples):
            self.by_clip.setdefault(sample.clip, []).append(index)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def exp_dim(self) -> int:
        return EXP_KINDS[self.exp_kind]

    @property
    def has_cross_pairs(self) -> bool:
        return any(len(indices) > 1 for indices in self.by_clip.values())

    def crop_uint8(self, index: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self.samples[index].crop) as image:
            image = image.convert("RGB")
            if image.size != (self.image_size, self.image_size):
                image = image.resize((self.image_size, self.image_size), Image.BICUBIC)
            return np.array(image, dtype=np.uint8)

    def pixels(self, index: int) -> torch.Tensor:
        """(3, S, S) float in [-1, 1]."""
        return torch.from_numpy(self.crop_uint8(index).copy()).permute(2, 0, 1).float() / 127.5 - 1.0

    def partner(self, index: int, generator: torch.Generator) -> int:
        """Another frame of the same clip (the sample itself when the clip has only one)."""
        others = [i for i in self.by_clip[self.samples[index].clip] if i != index]
        if not others:
            return index
        return others[int(torch.randint(len(others), (1,), generator=generator))]


def step_generator(seed: int, step: int, process: int, salt: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7919 + process * 104_729 + salt) % (2**63))


class StepBatches(torch.utils.data.Dataset):
    """Item s = the batch of global step `start + s` for this process (indices, pixels, conditions)."""

    def __init__(self, dataset: FaceDataset, batch_size: int, seed: int, process: int, start: int, stop: int,
                 pairs: bool = False, subset: int | None = None):
        self.dataset, self.batch_size, self.seed, self.process = dataset, batch_size, seed, process
        self.start, self.stop, self.pairs = start, stop, pairs
        self.pool = list(range(len(dataset)))[: subset or None]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, item: int) -> dict:
        step = self.start + item
        gen = step_generator(self.seed, step, self.process)
        pool = self.pool
        if len(pool) >= self.batch_size:
            chosen = [pool[i] for i in torch.randperm(len(pool), generator=gen)[: self.batch_size].tolist()]
        else:
            chosen = [pool[i] for i in torch.randint(len(pool), (self.batch_size,), generator=gen).tolist()]
        ds = self.dataset
        batch = {
            "index": torch.tensor(chosen),
            "pixels": torch.stack([ds.pixels(i) for i in chosen]),
            "arcface": torch.from_numpy(np.stack([ds.samples[i].arcface for i in chosen])),
            "expression": torch.from_numpy(np.stack([ds.samples[i].expression for i in chosen])),
        }
        if self.pairs:
            refs = [ds.partner(i, gen) for i in chosen]
            batch["ref_index"] = torch.tensor(refs)
            batch["ref_pixels"] = torch.stack([ds.pixels(i) for i in refs])
            batch["ref_arcface"] = torch.from_numpy(np.stack([ds.samples[i].arcface for i in refs]))
        return batch
