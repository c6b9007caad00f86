"""The missing-modality curve's fixed design, shared by `karmma-edge eval` (train.evaluate) and the
bench's deployed curve (edge_runtime.measure.deployed_curve): the p values, draws per p and each draw's seed,
so both score the same draws. No torch here."""

from __future__ import annotations

import numpy as np

P_VALUES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))
DRAWS = 20


def draw_seed(seed: int, p_index: int, draw: int) -> int:
    """The seed of draw `draw` at the `p_index`-th p."""
    return seed * 1_000_003 + p_index * 1000 + draw


def numpy_present(n: int, m: int, p: float, seed: int) -> np.ndarray:
    """[n, m] bool by the drop rule of `train.fit.draw_present` (each modality dropped with
    probability p, one drawn uniformly kept when none is left), from numpy's generator: the stand-in
    where torch is absent."""
    rng = np.random.default_rng(seed)
    present = rng.random((n, m)) >= p
    none = ~present.any(axis=1)
    present[np.flatnonzero(none), rng.integers(0, m, int(none.sum()))] = True
    return present
