"""`bench --compare OLD/results.json`: regressions beyond the noise the old run itself measured.

Latency: the new median is worse only if it lies above the old run's 90th percentile, i.e. above the
old median by more than the old p90 - p50 spread (which also covers "above the old maximum").
Accuracy and the deployed curve: a drop of more than one clip's worth (100 / clips points) on the
same held-out split; smaller moves are the quantizer's or the draws' noise, not a regression. Runs
that scored different splits compare latency only.
"""

from __future__ import annotations

from karmma_edge.edge_runtime.measure.bench_results import BenchResults, Comparison, Regression

RULES = [
    "latency: new p50 > old p90 (old p50 + the old p90-p50 spread)",
    "accuracy and deployed curve: new top-1 < old top-1 - 100/clips (one clip's worth)",
]


def compare(old: BenchResults, new: BenchResults, old_path: str) -> Comparison:
    regressions: list[Regression] = []
    unmatched: list[str] = []
    new_latency = {r.key: r for r in new.latency}
    for o in old.latency:
        label = f"{o.backend} {o.profile} {o.precision} b{o.batch}"
        n = new_latency.get(o.key)
        if n is None:
            unmatched.append(f"latency {label}")
        elif n.p50_ms > o.p90_ms:
            regressions.append(Regression("latency", label, o.p50_ms, n.p50_ms, o.p90_ms,
                                          f"p50 above old p90 ({o.p50_ms:.3f} + {o.p90_ms - o.p50_ms:.3f} ms)"))
    old_split, new_split = (r.data["split"] if r.data else None for r in (old, new))
    same_split = None in (old_split, new_split) or old_split == new_split
    for o in old.accuracy if same_split else []:
        label = f"{o.backend} {o.profile} {o.precision}"
        n = new.accuracy_of(*o.key)
        if n is None:
            unmatched.append(f"accuracy {label}")
        elif n.action_top1 < o.action_top1 - 100.0 / o.clips:
            regressions.append(Regression("accuracy", label, o.action_top1, n.action_top1,
                                          o.action_top1 - 100.0 / o.clips, f"dropped more than one clip of {o.clips}"))
    if same_split and old.curve is not None and new.curve is not None and old.data and new.data:
        one_clip = 100.0 / old.data["clips"]
        for p, acc in old.curve.engine.items():
            now = new.curve.engine.get(p)
            if now is not None and now < acc - one_clip:
                regressions.append(Regression("curve", f"deployed {old.curve.engine_precision} p={p}", acc, now,
                                              acc - one_clip, f"dropped more than one clip of {old.data['clips']}"))
    caveats = [_loaded(r, name) for r, name in ((old, "old"), (new, "new")) if _loaded(r, name)]
    if not same_split:
        caveats.append(f"the old run scored the {old_split} split and this one {new_split}: accuracy and the "
                       f"deployed curve were not compared; rerun with --split {old_split} to compare them")
    return Comparison(old=old_path, rules=RULES, regressions=regressions, unmatched=unmatched, caveats=caveats)


def _loaded(r: BenchResults, name: str) -> str | None:
    """Within-run spread cannot see load that changed between runs: say when a machine was busy."""
    load, cores = r.machine["load_average"][0], r.machine["cores_logical"]
    if load <= cores:
        return None
    return (f"the {name} run started with load average {load} on {cores} cores: other jobs were running, so "
            "latency flags may be their load rather than a regression; rerun both on a quiet machine")
