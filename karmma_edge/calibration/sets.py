"""Calibration sets: class-stratified, degraded clips included, from the training split only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from karmma_edge.data.arrays import SplitArrays
from karmma_edge.errors import KarmmaError


@dataclass
class CalibrationSet:
    arrays: SplitArrays
    sha256: str                     # of the clip ids and their bytes: the manifest records it

    def __len__(self) -> int:
        return len(self.arrays)

    def feeds(self, modalities: tuple[str, ...], batch: int = 8):
        """Input dicts for a profile's graph, `batch` clips at a time."""
        for start in range(0, len(self), batch):
            yield {m: self.arrays.inputs[m][start:start + batch] for m in modalities}


def draw_calibration_set(train: SplitArrays, size: int, seed: int = 0,
                         degraded_fraction: float = 0.25) -> CalibrationSet:
    """Round-robin over action classes so every class is represented as evenly as `size` allows, with
    at least `degraded_fraction` of the clips degraded when the split has enough of them: the ranges
    must cover the dim, blurred and noisy input the device will see, not only clean clips."""
    if size < 1:
        raise KarmmaError(f"calibration set size must be at least 1, got {size}")
    if len(train) == 0:
        raise KarmmaError("the training split is empty: there is nothing to calibrate on")
    rng = np.random.default_rng(seed)
    noun = np.maximum(train.noun, 0)       # Something-Something: one label (in verb), noun -1
    action = train.verb * (int(noun.max()) + 1) + noun
    want_degraded = int(round(size * degraded_fraction))
    pools = {}
    for cls in np.unique(action):
        members = rng.permutation(np.flatnonzero(action == cls))
        # degraded clips first inside each class until the quota is met
        members = sorted(members, key=lambda i: not train.degraded[i])
        pools[cls] = list(members)
    chosen: list[int] = []
    degraded_taken = 0
    while len(chosen) < min(size, len(train)):
        for cls in rng.permutation(list(pools)):
            pool = pools[cls]
            if not pool or len(chosen) >= size:
                continue
            if degraded_taken >= want_degraded:
                clean = [i for i in pool if not train.degraded[i]]
                pick = clean[0] if clean else pool[0]
            else:
                pick = pool[0]
            pool.remove(pick)
            degraded_taken += int(train.degraded[pick])
            chosen.append(int(pick))
    index = np.array(sorted(chosen))
    subset = train.subset(index)
    h = hashlib.sha256()
    for i, clip_id in enumerate(subset.ids):
        h.update(clip_id.encode())
        for m in sorted(subset.inputs):
            h.update(np.ascontiguousarray(subset.inputs[m][i]).tobytes())
    return CalibrationSet(subset, h.hexdigest())
