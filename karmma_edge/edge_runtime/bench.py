"""`karmma-edge bench`: per profile and precision, held-out accuracy and latency at batch 1. No torch."""

from __future__ import annotations

import csv
import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from karmma_edge.bundle import Bundle
from karmma_edge.errors import KarmmaError
from karmma_edge.profiles import expand_profiles


@dataclass
class BenchRow:
    profile: str
    precision: str
    backend: str
    action_top1: float
    verb_top1: float
    noun_top1: float
    clips: int
    latency_ms_p50: float
    latency_ms_min: float
    latency_ms_max: float
    runs: int


def run_bench(bundle_dir: Path, data: Path, out: Path, profiles: str = "all",
              precisions: tuple[str, ...] = ("fp32", "int8"), runs: int = 50, threads: int = 2,
              fmt: str = "epic100", progress: bool = True) -> list[BenchRow]:
    from rich.progress import Progress

    from karmma_edge.data.arrays import load_split
    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.evaluate import engine_logits, latencies
    from karmma_edge.metrics import top1

    bundle = Bundle(bundle_dir)
    chosen = expand_profiles(profiles, bundle.manifest.spec.modalities)
    missing = [p for p in chosen if p not in bundle.profiles]
    if missing:
        raise KarmmaError(f"bundle {bundle_dir} has no profile {missing[0]!r}; it has: {', '.join(bundle.profiles)}")
    if not Path(data).is_dir():
        raise KarmmaError(f"--data {data} does not exist; pass the dataset root the bundle was built from")
    spec = bundle.manifest.spec
    held_out = load_split(Path(data), bundle.manifest.eval_split, spec, fmt, progress=progress,
                          description="decoding held-out clips")
    rows: list[BenchRow] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("benchmarking", total=len(chosen) * len(precisions))
        for profile in chosen:
            for precision in precisions:
                bar.update(task, description=f"bench {profile} {precision}")
                with create_engine("onnxruntime", bundle.artifact(profile, precision), threads=threads) as engine:
                    acc = top1(*engine_logits(engine, held_out), held_out.verb, held_out.noun)
                    feed = {t.name: held_out.inputs[t.name][:1] for t in engine.inputs}
                    lat = latencies(engine, feed, runs) * 1e3
                rows.append(BenchRow(profile, precision, "onnxruntime", clips=len(held_out), runs=runs,
                                     latency_ms_p50=float(np.median(lat)), latency_ms_min=float(lat.min()),
                                     latency_ms_max=float(lat.max()), **acc))
                bar.advance(task)
    write_results(out, rows, bundle_dir)
    return rows


def write_results(out: Path, rows: list[BenchRow], bundle_dir: Path) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    import onnxruntime

    header = {"bundle": str(bundle_dir), "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "onnxruntime": onnxruntime.__version__, "batch": 1}
    (out / "results.json").write_text(json.dumps({"header": header, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def render_table(rows: list[BenchRow]):
    """One line per profile: FP32 and INT8 accuracy and median latency side by side."""
    from rich.table import Table

    table = Table(title="held-out action top-1 and batch-1 latency (ONNX Runtime, CPU)")
    table.add_column("profile", no_wrap=True, min_width=14)
    for col in ("FP32 top-1 %", "INT8 top-1 %", "FP32 ms p50", "INT8 ms p50", "clips"):
        table.add_column(col, justify="right")
    by_profile: dict[str, dict[str, BenchRow]] = {}
    for r in rows:
        by_profile.setdefault(r.profile, {})[r.precision] = r
    for profile, cells in by_profile.items():
        fp, q = cells.get("fp32"), cells.get("int8")
        table.add_row(profile,
                      f"{fp.action_top1:.1f}" if fp else "-", f"{q.action_top1:.1f}" if q else "-",
                      f"{fp.latency_ms_p50:.2f}" if fp else "-", f"{q.latency_ms_p50:.2f}" if q else "-",
                      str((fp or q).clips))
    return table
