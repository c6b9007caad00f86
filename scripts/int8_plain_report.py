"""Action top-1 per profile on the report split (test where the data has one): FP32, the bundle's
gated INT8, and plain `quantize_static` with its defaults (the first thing a user would try) on the
same calibration clips; INT8 graphs run as written (ONNX Runtime's graph optimizations off).

    python scripts/int8_plain_report.py --bundle karmma-demo/bundle --run karmma-demo/runs/karmma_s
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from onnxruntime.quantization import quantize_static

    from karmma_edge.bundle import Bundle
    from karmma_edge.calibration.sets import draw_calibration_set
    from karmma_edge.data import report_split
    from karmma_edge.data.arrays import load_split
    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.measure.evaluate import engine_logits
    from karmma_edge.metrics import top1
    from karmma_edge.quantize.int8 import _Reader
    from karmma_edge.train.runs import read_run_info

    bundle = Bundle(args.bundle)
    info = read_run_info(args.run)
    spec = bundle.manifest.spec
    root, fmt = Path(info["data"]["root"]), info["data"]["format"]
    cache = args.run / "cache"
    split = report_split(root, fmt)
    held_out = load_split(root, split, spec, fmt, spec.modalities, cache)
    train = load_split(root, "train", spec, fmt, spec.modalities, cache)

    def accuracy(path: Path) -> float:
        with create_engine("onnxruntime", path, threads=args.threads, qdq_reference=True) as engine:
            return top1(*engine_logits(engine, held_out), held_out.verb, held_out.noun)["action_top1"]

    print(f"action top-1 on {split} ({len(held_out)} clips)")
    print(f"{'profile':16s} {'FP32':>6s} {'gated INT8':>11s} {'plain quantize_static':>22s}  gate's choice")
    with tempfile.TemporaryDirectory() as tmp:
        for profile, entry in bundle.manifest.profiles.items():
            calib = draw_calibration_set(train, entry.calibration.clips)
            assert calib.sha256 == entry.calibration.set_sha256, "calibration set differs from the build's"
            plain = Path(tmp) / f"{profile}.onnx"
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(str(bundle.artifact(profile, "fp32")), str(plain),
                                _Reader(calib, tuple(entry.modalities), 8))
            print(f"{profile:16s} {accuracy(bundle.artifact(profile, 'fp32')):6.1f} "
                  f"{accuracy(bundle.artifact(profile, 'int8')):11.1f} {accuracy(plain):22.1f}  "
                  f"{entry.quantization['chosen']}")


if __name__ == "__main__":
    main()
