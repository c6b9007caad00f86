"""Retrain some stages of a reproduce preset with overrides, beside a finished `reproduce`, and score
them on validation: how the presets were chosen (docs/training.md), never on test.

    python scripts/preset_trials.py TRIAL --base repro/seed0 --train control,karmma_s --train-seed 1
    python scripts/preset_trials.py TRIAL --base repro/seed0 --train teacher,karmma_s --teacher '{"epochs": 100}'

Stages not retrained are linked from BASE/runs, and the decoded clips and tokens are BASE/cache's, so
only the named stages train (a finished one with the same config is reused). `--train-seed` sets the
training seed of the retrained stages (initialisation, batches, dropped subsets), the data staying
BASE's. Prints each scored method's validation action top-1 per subset, their mean, and the
missing-modality curve at p = 0 and 0.5.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trial", type=Path, help="output folder of this trial")
    ap.add_argument("--base", type=Path, required=True, help="a finished `reproduce` output (its runs and cache)")
    ap.add_argument("--data", type=Path, help="the dataset (default BASE/data)")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--train", default="karmma_s", help="stages to retrain, comma-separated")
    ap.add_argument("--score", help="methods to score (default: the retrained students and the teacher if retrained)")
    ap.add_argument("--train-seed", type=int, help="training seed of the retrained stages (default: BASE's)")
    for stage in ("teacher", "student"):
        ap.add_argument(f"--{stage}", default="{}", help=f"JSON overrides of the preset's `{stage}` fields")
    args = ap.parse_args()

    from karmma_edge.train.evaluate import evaluate_run
    from karmma_edge.train.reproduce import METHODS, get_preset, stage_configs

    preset = get_preset(args.preset)
    preset = preset.model_copy(update={s: {**getattr(preset, s), **json.loads(getattr(args, s))}
                                       for s in ("teacher", "student")})
    base_runs, runs = args.base / "runs", args.trial / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    train = [s for s in args.train.split(",") if s]
    base_seed = json.loads((base_runs / "teacher" / "run.json").read_text())["config"]["seed"]
    common = {"data": args.data or args.base / "data", "format": preset.format, "cache_dir": args.base / "cache",
              "threads": None, "seed": base_seed if args.train_seed is None else args.train_seed}
    stages = stage_configs(preset, runs, common)
    for name in stages:
        if name not in train and not (runs / name).exists():
            (runs / name).symlink_to((base_runs / name).resolve())
    for name in train:
        fit, cfg = stages[name]
        run = runs / name
        info = run / "run.json"
        if info.is_file() and json.loads(info.read_text())["config"] == cfg.model_dump(mode="json"):
            continue
        t0 = time.time()
        fit(cfg, run, False)
        print(f"{name}: trained in {time.time() - t0:.0f} s", flush=True)
    scored = args.score.split(",") if args.score else [m for m in train if m in METHODS]
    for m in scored:
        r = evaluate_run(runs / m, preset.draws, seed=0, progress=False, split="validation")
        top1 = {k: v["action_top1"] for k, v in r["subsets"].items()}
        curve = r["curve"]
        print(f"{m:18s} mean {sum(top1.values()) / len(top1):6.2f}  "
              + " ".join(f"{k}:{v:.1f}" for k, v in top1.items())
              + f"  p=0 {curve['0.0']:.1f}  p=0.5 {curve['0.5']:.1f}", flush=True)


if __name__ == "__main__":
    main()
