"""`karmma-edge build`. Heavy modules (torch, onnx) are imported inside the command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from karmma_edge.errors import KarmmaError


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


def register(root: typer.Typer) -> None:
    root.command()(build)
