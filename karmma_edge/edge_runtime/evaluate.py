"""Run an engine over a decoded split: logits for accuracy, repeated calls for latency. No torch."""

from __future__ import annotations

import time

import numpy as np

from karmma_edge.data.arrays import SplitArrays
from karmma_edge.edge_runtime.backends.base import Engine


def engine_logits(engine: Engine, arrays: SplitArrays, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Verb and noun logits of `engine` on every clip, feeding only the inputs the engine takes."""
    names = [t.name for t in engine.inputs]
    verbs, nouns = [], []
    for start in range(0, len(arrays), batch):
        out = engine.infer({m: arrays.inputs[m][start:start + batch] for m in names})
        verbs.append(out["verb"])
        nouns.append(out["noun"])
    return np.concatenate(verbs), np.concatenate(nouns)


def latencies(engine: Engine, feed: dict[str, np.ndarray], runs: int, warmup: int = 5) -> np.ndarray:
    """Seconds per call over `runs` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        engine.infer(feed)
    out = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        engine.infer(feed)
        out[i] = time.perf_counter() - start
    return out
