"""ONNX Runtime INT8 against FP32 latency at batch 1, the two sessions alternated in one run.

    python scripts/int8_speed.py --bundle karmma-demo/bundle            # a built bundle
    python scripts/int8_speed.py --model student-s                      # a registered student, random
                                                                        # weights, quantized here
Prints the medians, min/max and the INT8/FP32 ratio of the medians. Issue 5 asks for <= 0.6 on the
all-modality profile with 2 threads.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def _model_paths(model: str, profile: str, tmp: Path) -> tuple[Path, Path]:
    import torch

    from karmma_edge.calibration.sets import CalibrationSet
    from karmma_edge.data.arrays import SplitArrays
    from karmma_edge.quantize.export import example_inputs, export_profile
    from karmma_edge.quantize.int8 import quantize_int8
    from karmma_edge.train.models import create_student

    torch.manual_seed(0)
    student = create_student(model, {"verb": 6, "noun": 6}).eval()
    fp32 = export_profile(student, profile, tmp / "fp32.onnx")
    mods = tuple(profile.split("+"))
    ex = {m: t.numpy() for m, t in zip(mods, example_inputs(student, mods, batch=16))}
    n = 16
    calib = CalibrationSet(SplitArrays(ex, np.zeros(n, int), np.zeros(n, int), [str(i) for i in range(n)],
                                       np.zeros(n, bool)), "random")
    int8 = tmp / "int8.onnx"
    quantize_int8(fp32, int8, calib, mods)
    return fp32, int8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--bundle", type=Path)
    src.add_argument("--model")
    ap.add_argument("--profile", default="rgb+flow+audio")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()

    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.measure.evaluate import latencies

    with tempfile.TemporaryDirectory() as tmp:
        if args.bundle:
            from karmma_edge.bundle import Bundle

            bundle = Bundle(args.bundle)
            fp32, int8 = bundle.artifact(args.profile, "fp32"), bundle.artifact(args.profile, "int8")
        else:
            fp32, int8 = _model_paths(args.model, args.profile, Path(tmp))
        engines = {k: create_engine("onnxruntime", p, threads=args.threads).activate()
                   for k, p in (("fp32", fp32), ("int8", int8))}
        rng = np.random.default_rng(0)
        feed = {}
        for t in engines["fp32"].inputs:
            shape = (1, *t.shape[1:])
            feed[t.name] = (rng.integers(0, 256, shape).astype(np.uint8) if t.dtype == np.uint8
                            else (0.1 * rng.standard_normal(shape)).astype(np.float32))
        times = {k: [] for k in engines}
        for k, e in engines.items():
            latencies(e, feed, runs=1, warmup=10)
        for _ in range(args.runs):                     # alternate, so load drifts hit both alike
            for k, e in engines.items():
                times[k].append(latencies(e, feed, runs=1, warmup=0)[0] * 1e3)
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k}: median {med[k]:.2f} ms (min {min(v):.2f}, max {max(v):.2f}) over {len(v)} runs, "
              f"{args.threads} threads")
    print(f"INT8/FP32 = {med['int8'] / med['fp32']:.2f} ({args.profile})")


if __name__ == "__main__":
    main()
