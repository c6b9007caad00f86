"""`karmma-edge bench` (and, on the device, `serve`). Never imports torch."""

from __future__ import annotations

from pathlib import Path

import typer


def bench(
    bundle: Path = typer.Option(..., "--bundle", help="bundle directory (from `build`)"),
    data: Path = typer.Option(..., "--data", help="dataset root with the held-out split"),
    out: Path = typer.Option(..., "--out", help="report directory"),
    profiles: str = typer.Option("all", "--profiles", help="profiles to run, comma list or all"),
    runs: int = typer.Option(50, "--runs", help="timed runs per latency figure"),
    threads: int = typer.Option(2, "--threads"),
) -> None:
    """Held-out accuracy and batch-1 latency per profile, FP32 against INT8."""
    from rich.console import Console

    from karmma_edge.edge_runtime.bench import render_table, run_bench

    rows = run_bench(bundle, data, out, profiles=profiles, runs=runs, threads=threads)
    Console().print(render_table(rows))
    typer.echo(f"wrote {out}/results.json and {out}/results.csv")


def register(root: typer.Typer) -> None:
    root.command()(bench)
