"""A whole split decoded once into stacked arrays, cached on disk (no torch).

Training, calibration, the accuracy gate and bench all read evaluation-mode clips many times; JPEG
decoding them once and keeping a .npz beside the run makes every later pass cost memory reads only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from karmma_edge.inputs import InputSpec


@dataclass
class SplitArrays:
    inputs: dict[str, np.ndarray]      # per modality, stacked with a leading clip axis
    verb: np.ndarray                   # int64 [N]
    noun: np.ndarray                   # int64 [N]
    ids: list[str]
    degraded: np.ndarray               # bool [N]: the clip carries a sensor degradation (synthetic data)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> "SplitArrays":
        return SplitArrays({m: a[index] for m, a in self.inputs.items()}, self.verb[index],
                           self.noun[index], [self.ids[i] for i in index], self.degraded[index])


def _cache_key(root: Path, split: str, fmt: str, spec: InputSpec, modalities) -> str:
    h = hashlib.sha256(json.dumps(
        {"root": str(Path(root).resolve()), "split": split, "fmt": fmt, "spec": spec.to_dict(),
         "modalities": list(modalities)}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def load_split(root: Path, split: str, spec: InputSpec, fmt: str = "epic100",
               modalities: tuple[str, ...] | None = None, cache_dir: Path | None = None,
               progress: bool = True, description: str | None = None) -> SplitArrays:
    """Decode every clip of a split in evaluation mode; reuse `cache_dir`'s copy when present."""
    from karmma_edge.data import open_dataset

    ds = open_dataset(root, split, spec, fmt)
    mods = tuple(m for m in ds.modalities if modalities is None or m in modalities)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{split}-{_cache_key(root, split, fmt, spec, mods)}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                return SplitArrays({m: z[m] for m in mods}, z["verb"], z["noun"], list(z["ids"]), z["degraded"])
    n = len(ds)
    inputs = {m: np.empty((n, *spec.input_shape(m)), dtype=spec.input_dtype(m)) for m in mods}
    verb = np.empty(n, dtype=np.int64)
    noun = np.empty(n, dtype=np.int64)
    degraded = np.zeros(n, dtype=bool)
    from rich.progress import track

    for i in track(range(n), description=description or f"decoding {split} clips", disable=not progress,
                   transient=True):
        clip = ds.load(i, train=False)
        for m in mods:
            inputs[m][i] = clip.inputs[m]
        verb[i], noun[i] = clip.verb_class, clip.noun_class
        degraded[i] = ds.segments[i].extra.get("degradation", "none") not in ("", "none")
    ids = [s.id for s in ds.segments]
    arrays = SplitArrays(inputs, verb, noun, ids, degraded)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, verb=verb, noun=noun, ids=np.array(ids), degraded=degraded, **inputs)
        os.replace(tmp, cache)
    return arrays
