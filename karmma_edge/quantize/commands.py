"""`karmma-edge build`. Heavy modules (torch, onnx, tensorrt) are imported inside the command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from karmma_edge.errors import KarmmaError
from karmma_edge.targets import BACKENDS, PRECISIONS



def build(
    run: Optional[Path] = typer.Option(None, "--run", help="training run directory (from `train student`)"),
    profile: str = typer.Option("all", "--profile", help="profile (rgb+audio), a comma list, or all"),
    out: Optional[Path] = typer.Option(None, "--out", help="bundle directory to write (replaced atomically)"),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="build engines for an existing bundle "
                                          "(on the device) instead of a new bundle from --run"),
    precision: str = typer.Option("int8", "--precision", help="engine precision: int8, fp16 or fp32"),
    backend: str = typer.Option("onnxruntime", "--backend", help="onnxruntime, tensorrt or torch-tensorrt"),
    max_drop: float = typer.Option(1.0, "--max-drop", help="largest INT8 action top-1 loss (points) vs FP32"),
    data: Optional[Path] = typer.Option(None, "--data", help="dataset root, if not where the run was trained"),
    calibration_method: Optional[str] = typer.Option(
        None, "--calibration-method", help="minmax, entropy or percentile (default: the gate searches)"),
    calibration_size: int = typer.Option(64, "--calibration-size", help="clips in each calibration set"),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", help="TensorRT: build for this DLA core, GPU fallback"),
    engine_cache: Optional[Path] = typer.Option(None, "--engine-cache", help="TensorRT engine cache directory"),
    print_trtexec: bool = typer.Option(False, "--print-trtexec", help="print the equivalent trtexec command per profile"),
    threads: int = typer.Option(2, "--threads", help="ONNX Runtime threads for the accuracy gate"),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="TensorRT: largest batch the engines take "
                                            "[8; on DLA the one static batch, 1]"),
    workspace_mb: int = typer.Option(1024, "--workspace-mb", help="TensorRT: builder workspace, MiB"),
    force: bool = typer.Option(False, "--force", help="TensorRT: rebuild engines even when the cache has them"),
) -> None:
    """Export, calibrate and quantize one graph per profile into a bundle; optionally compile engines."""
    from karmma_edge.profiles import expand_profiles

    profiles = expand_profiles(profile)                       # a bad name fails before any work
    if backend not in BACKENDS:
        raise KarmmaError(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise KarmmaError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if calibration_method not in (None, "minmax", "entropy", "percentile"):
        raise KarmmaError(f"--calibration-method {calibration_method!r} is not one of minmax, entropy, percentile")
    if calibration_size < 1:
        raise KarmmaError(f"--calibration-size must be at least 1, got {calibration_size}")
    if max_drop < 0:
        raise KarmmaError(f"--max-drop must be >= 0 points, got {max_drop}")
    if (run is None) == (bundle is None):
        raise KarmmaError("give either --run RUN --out BUNDLE (a new bundle) or --bundle BUNDLE "
                          "(engines for an existing one)")
    if dla_core is not None and precision == "fp32":
        raise KarmmaError("--dla-core runs only int8 or fp16: use --precision int8, or drop --dla-core")
    if backend == "tensorrt" and not print_trtexec:
        from karmma_edge.quantize.tensorrt_build import require_tensorrt

        require_tensorrt()                          # fail before the long bundle build, not after it
    if run is not None:
        if out is None:
            raise KarmmaError("--out BUNDLE is required with --run")
        if not run.is_dir():
            raise KarmmaError(f"--run {run}: no such run directory; train one with "
                              "`karmma-edge train student --config FILE --out RUN`")
        if backend == "torch-tensorrt":
            from karmma_edge.quantize.torch_tensorrt_build import compile_run

            for line in compile_run(run, profiles if profile != "all" else None, precision, out):
                typer.echo(line)
            return
        from karmma_edge.quantize.build import BuildOptions, build_bundle

        manifest = build_bundle(BuildOptions(run=run, out=out, profiles=profile, data=data,
                                             calibration_method=calibration_method, max_drop=max_drop,
                                             calibration_size=calibration_size, threads=threads))
        for name, entry in manifest.profiles.items():
            acc = entry.accuracy
            typer.echo(f"{name:15s} FP32 {acc['fp32'].action_top1:5.1f}  INT8 {acc['int8'].action_top1:5.1f}  "
                       f"({entry.quantization['chosen']})")
        typer.echo(f"wrote {out} with {len(manifest.profiles)} profiles")
        bundle = out
    names = None if profile == "all" else profiles
    if print_trtexec:
        from karmma_edge.quantize.tensorrt_build import bundle_trtexec_commands, installed_tensorrt_major

        major = installed_tensorrt_major()
        typer.echo(f"# trtexec lines for TensorRT {major or '10 (none installed here; TensorRT 11 takes no --fp16)'}")
        for name, line in bundle_trtexec_commands(bundle, names, precision, dla_core=dla_core, max_batch=max_batch,
                                                  major=major or 10).items():
            typer.echo(f"# {name}\n{line}")
    elif backend == "tensorrt":
        from karmma_edge.quantize.tensorrt_build import build_bundle_engines

        for rec in build_bundle_engines(bundle, names, precision, engine_cache, dla_core, workspace_mb,
                                        progress=typer.echo, max_batch=max_batch, force=force):
            how = "cached" if rec["cached"] else f"built in {rec['seconds']} s"
            typer.echo(f"{rec['profile']}: {rec['engine']} ({how})")
            if rec["dla_placement"]:
                on_gpu = rec["dla_placement"]["GPU"]
                typer.echo(f"  DLA runs {len(rec['dla_placement']['DLA'])} layers, the GPU {len(on_gpu)}"
                           + (f": {', '.join(on_gpu[:10])}{' ...' if len(on_gpu) > 10 else ''}" if on_gpu else ""))
    elif run is None:
        raise KarmmaError("--bundle builds engines: add --backend tensorrt (ONNX Runtime needs no engine build)")


def check(
    bundle: Path = typer.Option(..., "--bundle", help="bundle directory (from `build`, here or elsewhere)"),
    precision: Optional[str] = typer.Option(None, "--precision", help="check only the graph this precision builds "
                                            "from (int8: Q/DQ, fp16/fp32: FP32) [both]"),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", help="also check DLA's restrictions"),
) -> None:
    """Check every graph of a bundle against TensorRT's ONNX parser rules (10.3 and 11.x); exit 2 on a finding."""
    from karmma_edge.quantize.trt_rules import check_bundle_for_build

    count = check_bundle_for_build(bundle, None, precision, dla_core)
    typer.echo(f"{bundle}: {count} graphs conform to TensorRT's ONNX parser rules (10.3 and 11.x)"
               + (f" and DLA's (core {dla_core})" if dla_core is not None else ""))


def register(root: typer.Typer) -> None:
    root.command()(build)
    root.command()(check)
