"""`karmma-edge demo`: the whole chain on the built-in synthetic data, in one directory."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from karmma_edge.presets import resolve_config


def run_demo(out: Path, preset: str = "demo", config: str = "student-demo.yaml") -> None:
    from karmma_edge.data import synthesize
    from karmma_edge.edge_runtime.measure.bench import BenchOptions, render_table, run_bench
    from karmma_edge.quantize.build import BuildOptions, build_bundle
    from karmma_edge.train.config import load_config
    from karmma_edge.train.loop import train_student

    console = Console()
    out = Path(out)
    config_path = resolve_config(config)
    data, run, bundle, bench = out / "data", out / "runs" / "student", out / "bundle", out / "bench"
    start = time.time()

    def step(text: str) -> None:
        console.print(f"[bold]\\[{time.time() - start:5.0f}s][/bold] {text}")

    if (data / "EPIC_100_train.csv").is_file():
        step(f"reusing the synthetic dataset in {data}")
    else:
        step(f"synthesizing the {preset} dataset into {data}")
        synthesize(data, preset=preset, seed=0)
    step(f"training the student ({config}) into {run}")
    info = train_student(load_config(config_path, data=data), run)
    step(f"student: held-out action top-1 {info['metrics']['action_top1']:.1f}% with every modality")
    step(f"building the bundle (every profile, FP32 and INT8) into {bundle}")
    build_bundle(BuildOptions(run=run, out=bundle))
    step(f"benchmarking into {bench}")
    rows = run_bench(bundle, data, bench, BenchOptions(run=run, batches=(1,)))   # batch 1: the device's case
    console.print(render_table(rows))
    step(f"done: {out}")
