"""Training throughput of a student config: clips/s of the whole `train student` stage.

    .venv/bin/python scripts/train_speed.py --data karmma-demo/data --config configs/student-demo.yaml \
        --epochs 3 --out /tmp/speed

Runs the config twice into fresh run directories sharing one cache: the first pays for decoding
(or, above `decoded_cache_gb`, for nothing: clips stream), the second reads the cache. Reports wall
seconds and training clips per second (epochs x training clips / seconds, held-out evaluation
included). Uses only `load_config` and `train_student`, so it also times older checkouts
(PYTHONPATH=OLD_CHECKOUT) for a before/after comparison.
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
    for name in ("cold", "warm"):
        start = time.perf_counter()
        train_student(cfg, args.out / name, progress=False)
        seconds = time.perf_counter() - start
        result[name] = {"seconds": round(seconds, 1), "clips_per_s": round(args.epochs * clips / seconds, 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
