"""Per profile of a bundle: which held-out clips the INT8 graph gets right, measured two ways.

- `reference`: the Q/DQ graph as written (what the build's gate and the manifest record);
- `fast path`: ONNX Runtime's fused int8 kernels on this processor.

Run it on two hosts (or under `qemu-x86_64 -cpu Haswell`, an AVX2 processor without VNNI) and compare
the printed digests: the reference digest must not change with the processor; the fast path's may.

    python scripts/int8_host_check.py --bundle B --data ROOT [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from karmma_edge.bundle import Bundle
from karmma_edge.data.arrays import load_split
from karmma_edge.edge_runtime.backends import create_engine
from karmma_edge.edge_runtime.cpu_features import int8_support
from karmma_edge.edge_runtime.measure.evaluate import engine_logits


def right_clips(path: Path, held_out, reference: bool) -> np.ndarray:
    with create_engine("onnxruntime", path, threads=2, qdq_reference=reference) as engine:
        verb, noun = engine_logits(engine, held_out)
    return (verb.argmax(1) == held_out.verb) & (noun.argmax(1) == held_out.noun)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    bundle = Bundle(args.bundle)
    held_out = load_split(args.data, bundle.manifest.eval_split, bundle.manifest.spec, progress=False)
    cpu = int8_support()
    print(f"cpu {cpu.isa}; int8 fast path exact: {cpu.exact} ({cpu.reason})")
    out = {"cpu": cpu.isa, "exact": cpu.exact, "profiles": {}}
    for profile in bundle.profiles:
        row = {}
        for name, reference in (("reference", True), ("fast_path", False)):
            ok = right_clips(bundle.artifact(profile, "int8"), held_out, reference)
            row[name] = {"right": int(ok.sum()), "clips": len(ok),
                         "digest": hashlib.sha256(np.packbits(ok).tobytes()).hexdigest()[:12]}
        recorded = bundle.manifest.profiles[profile].accuracy["int8"].clips_right
        print(f"{profile:15s} manifest {recorded}  reference {row['reference']['right']}/{len(held_out)} "
              f"[{row['reference']['digest']}]  fast path {row['fast_path']['right']}/{len(held_out)} "
              f"[{row['fast_path']['digest']}]")
        out["profiles"][profile] = row | {"manifest_right": recorded}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
