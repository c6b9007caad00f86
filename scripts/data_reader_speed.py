"""Reader speed (issue 3): evaluation-mode clips per second from folders and from per-video tars.

    python scripts/data_reader_speed.py --root data/demo          # a demo tree (folders)
    python scripts/data_reader_speed.py --synth --root /tmp/demo   # synthesize the demo preset first

The tar copy is packed from the folder tree (karmma_edge.data.tars.pack_tree) unless --tar-root
names one. Clips are InputSpec defaults (T=8, 64x64, 1 s of 24 kHz audio, all modalities); each
worker is a process reading its share of the clips, as a training data loader does.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

from karmma_edge.data import open_dataset, synthesize
from karmma_edge.data.tars import pack_tree
from karmma_edge.inputs import InputSpec

_DS = None


def _init(root: str, split: str) -> None:
    global _DS
    import cv2
    cv2.setNumThreads(1)
    _DS = open_dataset(Path(root), split, InputSpec())


def _load(i: int) -> int:
    clip = _DS.load(i)
    return sum(a.nbytes for a in clip.inputs.values())


def measure(root: Path, split: str, n: int, workers: int) -> float:
    """Clips per second for the first n clips of a split (opening the dataset is not timed)."""
    idx = list(range(n))
    if workers == 1:
        _init(str(root), split)
        t = time.perf_counter()
        for i in idx:
            _load(i)
        return n / (time.perf_counter() - t)
    with get_context("fork").Pool(workers, _init, (str(root), split)) as pool:
        pool.map(_load, idx[: workers * 4])           # warm the workers (tar indexes, HDF5 handles)
        t = time.perf_counter()
        pool.map(_load, idx, chunksize=8)
        return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--tar-root", type=Path)
    ap.add_argument("--synth", action="store_true", help="synthesize the demo preset at --root if absent")
    ap.add_argument("--split", default="train")
    ap.add_argument("--clips", type=int, default=600)
    args = ap.parse_args()
    if args.synth and not args.root.exists():
        synthesize(args.root, preset="demo")
    tmp = None
    tar_root = args.tar_root
    if tar_root is None:
        tmp = tempfile.TemporaryDirectory(dir=args.root.parent)
        t = time.perf_counter()
        tar_root = pack_tree(args.root, Path(tmp.name) / "tars")
        print(f"packed {args.root} into per-video tars in {time.perf_counter() - t:.0f} s")
    n = min(args.clips, len(open_dataset(args.root, args.split, InputSpec())))
    print(f"{n} evaluation-mode clips of {args.split}, InputSpec() = T 8, 64x64, rgb+flow+audio; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'source':<10}{'workers':>8}{'clips/s':>10}{'clips/min':>11}")
    for name, root in (("folders", args.root), ("tar", tar_root)):
        for workers in (1, 2):
            rate = measure(root, args.split, n, workers)
            print(f"{name:<10}{workers:>8}{rate:>10.0f}{rate * 60:>11.0f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
