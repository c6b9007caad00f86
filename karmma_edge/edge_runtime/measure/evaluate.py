"""Run an engine over a decoded split: logits for accuracy, repeated calls for latency. No torch."""

from __future__ import annotations

import time

import numpy as np

from karmma_edge.data.arrays import SplitArrays
from karmma_edge.edge_runtime.backends.base import Engine


def engine_logits(engine: Engine, arrays: SplitArrays, outputs: tuple[str, ...] = ("verb", "noun"),
                  batch: int = 16) -> tuple[np.ndarray, ...]:
    """Logits of `outputs` (verb and noun, or a single-label model's action) of `engine` on every clip,
    feeding only the inputs the engine takes.

    Chunks of at most the engine's max batch (a TensorRT plan takes no more); an engine with a static
    batch (DLA: min = max) gets the last chunk padded with its last clip, and the padding dropped.
    """
    names = [t.name for t in engine.inputs]
    step = min(batch, getattr(engine, "max_batch", None) or batch)
    static = getattr(engine, "min_batch", 0) == step
    parts: dict[str, list[np.ndarray]] = {o: [] for o in outputs}
    for start in range(0, len(arrays), step):
        feed = {m: arrays.inputs[m][start:start + step] for m in names}
        n = len(next(iter(feed.values())))
        if static and n < step:
            feed = {m: np.concatenate([x, np.repeat(x[-1:], step - n, axis=0)]) for m, x in feed.items()}
        out = engine.infer(feed)
        for o in outputs:
            parts[o].append(out[o][:n])
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
