"""The `karmma-edge` command line (DESIGN section 9): one typer app; heavy modules load per command.

A user error is a KarmmaError, caught once here: its message is printed and the exit status is 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from karmma_edge.errors import KarmmaError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build, benchmark and serve a missing-modality-robust action recogniser on edge devices.")
train_app = typer.Typer(no_args_is_help=True, help="Train extractors, the teacher or the student.")
app.add_typer(train_app, name="train")


def _mount_data() -> None:
    from karmma_edge.data import commands as data_commands

    app.add_typer(data_commands.app, name="data")


_mount_data()


@train_app.command("student")
def train_student_cmd(
    config: Path = typer.Option(..., "--config", help="YAML training config (see configs/)"),
    out: Path = typer.Option(..., "--out", help="run directory to write"),
    data: Optional[Path] = typer.Option(None, "--data", help="dataset root (overrides the config's `data`)"),
    seed: Optional[int] = typer.Option(None, "--seed"),
) -> None:
    """Train the student with cross-entropy and modality dropout."""
    from karmma_edge.train.config import load_config
    from karmma_edge.train.loop import train_student

    cfg = load_config(config, data=data, seed=seed)
    info = train_student(cfg, out)
    m = info["metrics"]
    typer.echo(f"{out}: held-out action top-1 {m['action_top1']:.1f}% (verb {m['verb_top1']:.1f}, noun {m['noun_top1']:.1f})")


@app.command()
def build(
    run: Path = typer.Option(..., "--run", help="training run directory (from `train student`)"),
    profile: str = typer.Option("all", "--profile", help="profile (rgb+audio), a comma list, or all"),
    out: Path = typer.Option(..., "--out", help="bundle directory to write (replaced atomically)"),
    data: Optional[Path] = typer.Option(None, "--data", help="dataset root, if not where the run was trained"),
    calibration_method: str = typer.Option("minmax", "--calibration-method", help="minmax, entropy or percentile"),
    calibration_size: int = typer.Option(64, "--calibration-size", help="clips in each calibration set"),
    threads: int = typer.Option(2, "--threads", help="ONNX Runtime threads for the accuracy check"),
) -> None:
    """Export, calibrate and quantize one graph per profile into a bundle."""
    from karmma_edge.profiles import expand_profiles

    expand_profiles(profile)                       # a bad name fails before any work
    if calibration_method not in ("minmax", "entropy", "percentile"):
        raise KarmmaError(f"--calibration-method {calibration_method!r} is not one of minmax, entropy, percentile")
    if calibration_size < 1:
        raise KarmmaError(f"--calibration-size must be at least 1, got {calibration_size}")
    if not run.is_dir():
        raise KarmmaError(f"--run {run}: no such run directory; train one with "
                          "`karmma-edge train student --config FILE --out RUN`")
    from karmma_edge.quantize.build import BuildOptions, build_bundle

    manifest = build_bundle(BuildOptions(run=run, out=out, profiles=profile, data=data,
                                         calibration_method=calibration_method,
                                         calibration_size=calibration_size, threads=threads))
    typer.echo(f"wrote {out} with {len(manifest.profiles)} profiles: {', '.join(manifest.profiles)}")


@app.command()
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


@app.command()
def demo(out: Path = typer.Option(Path("karmma-demo"), "--out", help="directory for everything the demo writes")) -> None:
    """The whole chain on the built-in synthetic data: data, student, bundle, bench."""
    from karmma_edge.demo import run_demo

    run_demo(out)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()               # click handles its own usage errors (exit 2) and --help
    except KarmmaError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
