"""Several `karmma-edge reproduce` outputs (one per seed) side by side, against issue 15's acceptance 3.

    python scripts/reproduce_seeds.py runs/demo-seed4 runs/demo-seed5 runs/demo-seed6

One markdown table: per seed the mean action top-1 over subsets of every method, the share of its
p = 0 accuracy KARMMA_S and the baseline keep at p = 0.5, KARMMA_S's all-modality top-5 and mean
class accuracy, and whether each check held. Exit status 1 when a check failed on any seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from karmma_edge.train.reproduce import KEPT_RATIO, acceptance_checks

CHECKS = {"order_mean": "KARMMA_S > w/ δ > baseline (mean)", "order_p05": "same at p = 0.5",
          "kept_ratio": f"kept >= {KEPT_RATIO}x baseline's", "beats_control": "KARMMA_S > control"}
MEANS = {"teacher": "KARMMA_T", "karmma_s": "KARMMA_S", "baseline_dropout": "w/ δ", "baseline": "baseline",
         "control": "control"}


def row(out: Path) -> tuple[list[str], bool]:
    results = json.loads((out / "results.json").read_text())
    if "control" not in results["methods"] or "split" not in results:
        sys.exit(f"{out / 'results.json'} predates the control and the test split; rerun `karmma-edge reproduce` "
                 "on that seed with this version")
    meta_path = out / "reproduce.json"
    seed = json.loads(meta_path.read_text())["seed"] if meta_path.is_file() else out.name
    c = acceptance_checks(results)
    full = next(iter(results["methods"]["karmma_s"]["subsets"].values()))     # every modality present
    kept = c["kept_p05"]
    cells = [str(seed), results["split"], *(f"{c['mean_top1'][m]:.2f}" for m in MEANS),
             f"{100 * kept['karmma_s']:.0f}% / {100 * kept['baseline']:.0f}%",
             f"{full['action_top5']:.1f} / {full['action_mean_class']:.1f}",
             *("yes" if c["checks"][k] else "**no**" for k in CHECKS)]
    return cells, c["holds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="reproduce --out directories, one per seed")
    args = parser.parse_args(argv)
    header = ["seed", "split", *(f"{label} mean" for label in MEANS.values()), "kept at p=0.5 KARMMA_S / baseline",
              "KARMMA_S all-modality top-5 / mean class", *CHECKS.values()]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    held = 0
    for d in args.dirs:
        cells, holds = row(d)
        held += holds
        print("| " + " | ".join(cells) + " |")
    print(f"\nEvery check held on {held} of {len(args.dirs)} seeds.")
    return 0 if held == len(args.dirs) else 1


if __name__ == "__main__":
    sys.exit(main())
