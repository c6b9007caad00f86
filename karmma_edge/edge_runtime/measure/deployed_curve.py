"""The deployed system's accuracy as sensors drop out: per clip each modality is dropped with
probability p (at least one kept), the runtime's `ProfileSelector` picks an engine for the sensors
left, and that engine's prediction is scored. Beside it, the torch student on the same draws.

The drop rule, p values, number of draws and seeds are those of `karmma-edge eval`
(`karmma_edge.train.evaluate.curve`): each modality dropped independently; when none is left one
drawn uniformly is kept. Where torch is installed the draws come from the very same generator, so
the student's curve here equals `karmma-edge eval`'s; without torch (a device) numpy draws by the
same rule stand in, and `rng` says which was used. No torch at module level.

As in `eval`, an engine's prediction for a clip depends only on the clip and the engine, so each
clip takes its prediction from one pass of every engine over the held-out split.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.util import find_spec

import numpy as np

from karmma_edge.drop_curve import DRAWS, P_VALUES, draw_seed, numpy_present
from karmma_edge.edge_runtime.measure.bench_results import Curve
from karmma_edge.edge_runtime.selector import ProfileSelector
from karmma_edge.profiles import profile_name

# profile -> (verb logits [N, V], noun logits [N, N])
Logits = dict[str, tuple[np.ndarray, np.ndarray]]


def draws(n: int, modalities: tuple[str, ...], draws_per_p: int = DRAWS, seed: int = 0
          ) -> tuple[str, Iterator[tuple[str, list[frozenset[str]]]]]:
    """(rng name, iterator of (p as "0.1", live set per clip) for every p and draw)."""
    rng = "torch" if find_spec("torch") is not None else "numpy"
    if rng == "torch":
        import torch

        from karmma_edge.train.fit import draw_present

        def present_of(p: float, s: int) -> np.ndarray:
            return draw_present(n, len(modalities), p, torch.Generator().manual_seed(s)).numpy()
    else:
        def present_of(p: float, s: int) -> np.ndarray:
            return numpy_present(n, len(modalities), p, s)

    def gen():
        for i, p in enumerate(P_VALUES):
            for d in range(draws_per_p):
                present = present_of(p, draw_seed(seed, i, d))
                yield f"{p:.1f}", [frozenset(m for m, keep in zip(modalities, row) if keep) for row in present]

    return rng, gen()


def _correct(logits: Logits, verb: np.ndarray, noun: np.ndarray) -> dict[str, np.ndarray]:
    """Per profile, whether each clip's action (verb and noun) is right."""
    return {p: (v.argmax(axis=1) == verb) & (nn_.argmax(axis=1) == noun) for p, (v, nn_) in logits.items()}


def deployed_curve(engine_logits: Logits, verb: np.ndarray, noun: np.ndarray, modalities: tuple[str, ...],
                   student_logits: Logits | None = None, precision: str = "int8",
                   draws_per_p: int = DRAWS, seed: int = 0) -> Curve:
    """Action top-1 (%) against p of the engines in `engine_logits` as the selector picks them and,
    given `student_logits` for every subset of `modalities`, of the student on the same draws."""
    selector = ProfileSelector(engine_logits)
    engine_ok = _correct(engine_logits, verb, noun)
    student_ok = _correct(student_logits, verb, noun) if student_logits else None
    n = len(verb)
    clip = np.arange(n)
    per_p: dict[str, dict[str, list[float]]] = {}
    rng, stream = draws(n, modalities, draws_per_p, seed)
    for p, live in stream:
        acc = per_p.setdefault(p, {"engine": [], "student": [], "no_engine": []})
        chosen = [selector.select(s) for s in live]
        acc["engine"].append(100.0 * np.mean([c is not None and engine_ok[c][k] for k, c in zip(clip, chosen)]))
        acc["no_engine"].append(100.0 * np.mean([c is None for c in chosen]))
        if student_ok is not None:
            acc["student"].append(100.0 * np.mean([student_ok[profile_name(s)][k] for k, s in zip(clip, live)]))

    def stat(kind: str, f) -> dict[str, float]:
        return {p: float(f(v[kind])) for p, v in per_p.items()}

    curve = Curve(p=list(P_VALUES), draws=draws_per_p, seed=seed, rng=rng, profiles=list(engine_logits),
                  engine_precision=precision, engine=stat("engine", np.mean), engine_min=stat("engine", np.min),
                  engine_max=stat("engine", np.max), no_engine=stat("no_engine", np.mean))
    if student_ok is not None:
        curve.student, curve.student_min, curve.student_max = (
            stat("student", np.mean), stat("student", np.min), stat("student", np.max))
        curve.max_gap = max(abs(curve.engine[p] - curve.student[p]) for p in curve.engine)
    return curve
