"""A whole split decoded once into stacked arrays, cached on disk and memory-mapped (no torch).

Training on small splits, calibration, the accuracy gate and bench all read evaluation-mode clips
many times; JPEG decoding them once into .npy files beside the run makes every later pass cost
memory reads only. Clips are written straight into the memory-mapped files, so neither decoding nor
reading holds the split in process memory (the page cache does). Splits too large for that are
streamed by `train.datasets` instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from karmma_edge.atomic import atomic_directory
from karmma_edge.inputs import InputSpec


@dataclass
class SplitArrays:
    inputs: dict[str, np.ndarray]      # per modality, stacked with a leading clip axis (memory-mapped when cached)
    verb: np.ndarray                   # int64 [N]
    noun: np.ndarray                   # int64 [N]
    ids: list[str]
    degraded: np.ndarray               # bool [N]: the clip carries a sensor degradation (synthetic data)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> "SplitArrays":
        return SplitArrays({m: a[index] for m, a in self.inputs.items()}, self.verb[index],
                           self.noun[index], [self.ids[i] for i in index], self.degraded[index])


def split_nbytes(n: int, spec: InputSpec, modalities) -> int:
    """Bytes of `n` decoded clips of `modalities` at `spec`."""
    return n * sum(int(np.prod(spec.input_shape(m))) * np.dtype(spec.input_dtype(m)).itemsize for m in modalities)


def _cache_key(root: Path, split: str, fmt: str, spec: InputSpec, modalities) -> str:
    h = hashlib.sha256(json.dumps(
        {"root": str(Path(root).resolve()), "split": split, "fmt": fmt, "spec": spec.to_dict(),
         "modalities": list(modalities)}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def load_split(root: Path, split: str, spec: InputSpec, fmt: str = "epic100",
               modalities: tuple[str, ...] | None = None, cache_dir: Path | None = None,
               progress: bool = True, description: str | None = None) -> SplitArrays:
    """Decode every clip of a split in evaluation mode; reuse `cache_dir`'s copy when present.

    With `cache_dir` the arrays are read-only memory maps of `<cache_dir>/<split>-<key>/<modality>.npy`."""
    from karmma_edge.data import open_dataset

    ds = open_dataset(root, split, spec, fmt)
    mods = tuple(m for m in ds.modalities if modalities is None or m in modalities)
    n = len(ds)
    ids = [s.id for s in ds.segments]
    verb = np.array([s.verb_class for s in ds.segments], dtype=np.int64)
    noun = np.array([s.noun_class for s in ds.segments], dtype=np.int64)
    degraded = np.array([s.extra.get("degradation", "none") not in ("", "none") for s in ds.segments], dtype=bool)
    folder = None
    if cache_dir is not None:
        folder = Path(cache_dir) / f"{split}-{_cache_key(root, split, fmt, spec, mods)}"
        if (folder / "done").is_file():
            return SplitArrays({m: np.load(folder / f"{m}.npy", mmap_mode="r") for m in mods}, verb, noun, ids, degraded)
    if folder is None:
        inputs = {m: np.empty((n, *spec.input_shape(m)), dtype=spec.input_dtype(m)) for m in mods}
        _decode_into(inputs, ds, mods, progress, description or f"decoding {split} clips")
        return SplitArrays(inputs, verb, noun, ids, degraded)
    # A reader sees the whole cache or none; several processes may fill it at once, so none of
    # them removes the others' unfinished copies.
    with atomic_directory(folder, clean_stale=False) as tmp:
        inputs = {m: np.lib.format.open_memmap(tmp / f"{m}.npy", mode="w+", dtype=spec.input_dtype(m),
                                               shape=(n, *spec.input_shape(m))) for m in mods}
        _decode_into(inputs, ds, mods, progress, description or f"decoding {split} clips")
        for a in inputs.values():
            a.flush()
        del inputs
        (tmp / "done").touch()
    return SplitArrays({m: np.load(folder / f"{m}.npy", mmap_mode="r") for m in mods}, verb, noun, ids, degraded)


def _decode_into(inputs: dict[str, np.ndarray], ds, mods, progress: bool, description: str) -> None:
    from rich.progress import track

    for i in track(range(len(ds)), description=description, disable=not progress, transient=True):
        clip = ds.load(i, train=False)
        for m in mods:
            inputs[m][i] = clip.inputs[m]
