"""Run an engine over a decoded split: logits for accuracy, repeated calls for latency. No torch."""

from __future__ import annotations

import time

import numpy as np

from karmma_edge.data.arrays import SplitArrays
from karmma_edge.edge_runtime.backends.base import Engine


def engine_logits(engine: Engine, arrays: SplitArrays, outputs: tuple[str, ...] = ("verb", "noun"),
                  batch: int = 16) -> tuple[np.ndarray, ...]:
    """Logits of `outputs` (verb and noun, or a single-label model's action) of `engine` on every clip,
    feeding only the inputs the engine takes."""
    names = [t.name for t in engine.inputs]
    parts: dict[str, list[np.ndarray]] = {o: [] for o in outputs}
    for start in range(0, len(arrays), batch):
        out = engine.infer({m: arrays.inputs[m][start:start + batch] for m in names})
        for o in outputs:
            parts[o].append(out[o])
    return tuple(np.concatenate(parts[o]) for o in outputs)


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
