"""Summarise several `karmma-edge reproduce` outputs (one per seed) against issue 4's acceptance 1.

    python scripts/train_seed_summary.py runs/demo-seed0 runs/demo-seed1
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from karmma_edge.train.reproduce import METHODS, mean_action, relative_drop


def main(dirs: list[str]) -> int:
    ok = True
    print("| run | " + " | ".join(f"mean {m}" for m in METHODS) + " | drop@0.5 karmma_s | drop@0.5 baseline | pattern |")
    print("|---|" + "---|" * (len(METHODS) + 3))
    for d in dirs:
        res = json.loads((Path(d) / "results.json").read_text())["methods"]
        means = {m: mean_action(res[m]) for m in METHODS}
        drops = {m: relative_drop(res[m]["curve"]) for m in ("karmma_s", "baseline")}
        holds = (means["karmma_s"] >= means["baseline_dropout"] >= means["baseline"]
                 and drops["karmma_s"] < drops["baseline"])
        ok &= holds
        print(f"| {d} | " + " | ".join(f"{means[m]:.2f}" for m in METHODS)
              + f" | {100 * drops['karmma_s']:.0f}% | {100 * drops['baseline']:.0f}% | {'holds' if holds else 'FAILS'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
