"""Run an engine over a decoded split: logits for accuracy, repeated calls for latency. No torch."""

from __future__ import annotations

import time

import numpy as np

from karmma_edge.data.arrays import SplitArrays
from karmma_edge.edge_runtime.backends.base import Engine


def engine_logits(engine: Engine, arrays: SplitArrays, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Verb and noun logits of `engine` on every clip, feeding only the inputs the engine takes.

    Chunks of at most the engine's max batch (a TensorRT plan takes no more); an engine with a static
    batch (DLA: min = max) gets the last chunk padded with its last clip, and the padding dropped.
    """
    names = [t.name for t in engine.inputs]
    step = min(batch, getattr(engine, "max_batch", None) or batch)
    static = getattr(engine, "min_batch", 0) == step
    verbs, nouns = [], []
    for start in range(0, len(arrays), step):
        feed = {m: arrays.inputs[m][start:start + step] for m in names}
        n = len(next(iter(feed.values())))
        if static and n < step:
            feed = {m: np.concatenate([x, np.repeat(x[-1:], step - n, axis=0)]) for m, x in feed.items()}
        out = engine.infer(feed)
        verbs.append(out["verb"][:n])
        nouns.append(out["noun"][:n])
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
