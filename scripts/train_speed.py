"""Training throughput of a student config: clips/s of the whole `train student` stage.

    .venv/bin/python scripts/train_speed.py --data karmma-demo/data --config karmma_edge/configs/student-demo.yaml \
        --epochs 3 --out /tmp/speed

Runs the config twice into fresh run directories sharing one cache: the first pays for decoding
(or, above `decoded_cache_gb`, for nothing: clips stream), the second reads the cache. Reports wall
seconds and training clips per second (epochs x training clips / seconds, held-out evaluation
included). Uses only `load_config` and `train_student`, so it also times older checkouts
(PYTHONPATH=OLD_CHECKOUT) for a before/after comparison.

`--input-only` times the input path alone instead, the one thing the streaming loader changed for
a split small enough to cache: one epoch of batches (this checkout's DataLoader over the memory-
mapped cache) against the same batches indexed from the arrays held in memory, as the old loader
did; best of `--repeats`, alternating.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--input-only", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from karmma_edge.data import open_dataset
    from karmma_edge.train.config import load_config
    from karmma_edge.train.loop import train_student
    from karmma_edge.train.models import model_config

    cfg = load_config(args.config, data=args.data)
    cfg.epochs, cfg.threads, cfg.cache_dir = args.epochs, args.threads, args.out / "cache"
    clips = len(open_dataset(args.data, "train", model_config(cfg.model).spec, cfg.format))
    result = {"config": str(args.config), "epochs": args.epochs, "train_clips": clips}
    if args.input_only:
        result.update(input_path(cfg, args))
        print(json.dumps(result))
        return
    for name in ("cold", "warm"):
        start = time.perf_counter()
        train_student(cfg, args.out / name, progress=False)
        seconds = time.perf_counter() - start
        result[name] = {"seconds": round(seconds, 1), "clips_per_s": round(args.epochs * clips / seconds, 1)}
    print(json.dumps(result))


def input_path(cfg, args) -> dict:
    import numpy as np
    import torch

    from karmma_edge.train.fit import training_batches
    from karmma_edge.train.models import model_config

    batches, dataset = training_batches(cfg, "train", model_config(cfg.model).spec, cfg.cache_dir, progress=False)
    in_memory = {m: np.array(a) for m, a in dataset.arrays.inputs.items()}
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).numpy()
    best = {"memory_mapped_loader_s": float("inf"), "in_memory_arrays_s": float("inf")}
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _index, inputs in batches.epoch(order):
            pass
        best["memory_mapped_loader_s"] = min(best["memory_mapped_loader_s"], time.perf_counter() - start)
        start = time.perf_counter()
        for step in range(batches.steps):
            index = batches.sampler.global_batch(step)
            {m: torch.from_numpy(a[index]) for m, a in in_memory.items()}
        best["in_memory_arrays_s"] = min(best["in_memory_arrays_s"], time.perf_counter() - start)
    return {k: round(v, 4) for k, v in best.items()}


if __name__ == "__main__":
    main()
