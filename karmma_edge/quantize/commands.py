"""`karmma-edge build`. Heavy modules (torch, onnx, tensorrt) are imported inside the command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from karmma_edge.cli_options import (BUNDLE_HELP, DATA_HELP, DLA_CORE_HELP, ENGINE_CACHE_HELP, PROFILES_HELP,
                                     RUN_HELP, THREADS_HELP, Backend, CalibrationMethod, Precision, deprecated,
                                     prefer, value)
from karmma_edge.errors import KarmmaError
from karmma_edge.profiles import expand_profiles
from karmma_edge.quantize.build import BuildOptions


def build(
    run: Optional[Path] = typer.Option(None, "--run", help=f"{RUN_HELP}: build a new bundle from it"),
    profiles: Optional[str] = typer.Option(None, "--profiles", help=f"{PROFILES_HELP} (default: all)"),
    profile_old: Optional[str] = deprecated("--profile", "--profiles"),
    out: Optional[Path] = typer.Option(None, "--out", help="bundle directory to write (replaced atomically)"),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="build engines for this existing bundle "
                                          "(on the device) instead of a new bundle from --run"),
    precision: Optional[Precision] = typer.Option(None, "--precision", help="engine precision (TensorRT, "
                                                  "torch-tensorrt, --print-trtexec) (default: int8)"),
    backend: Backend = typer.Option(Backend.onnxruntime, "--backend", help="what the bundle is built for"),
    max_drop: Optional[float] = typer.Option(None, "--max-drop", help="largest INT8 action top-1 loss vs FP32, "
                                             "points (default: 1.0)"),
    data: Optional[Path] = typer.Option(None, "--data", help=f"{DATA_HELP} (default: where the run was trained)"),
    calibration_method: Optional[CalibrationMethod] = typer.Option(
        None, "--calibration-method", help="INT8 calibration (default: the gate tries each)"),
    calibration_size: Optional[int] = typer.Option(None, "--calibration-size", help="clips in each calibration set (default: 64)"),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", help=DLA_CORE_HELP),
    engine_cache: Optional[Path] = typer.Option(None, "--engine-cache", help=ENGINE_CACHE_HELP),
    print_trtexec: bool = typer.Option(False, "--print-trtexec", help="print the equivalent trtexec command per profile"),
    threads: Optional[int] = typer.Option(None, "--threads", help=f"{THREADS_HELP} for the accuracy gate (default: 2)"),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="TensorRT: largest batch the engines take "
                                            "(default: 8; on DLA the one static batch, 1)"),
    workspace_mb: Optional[int] = typer.Option(None, "--workspace-mb", help="TensorRT: builder workspace, MiB (default: 1024)"),
    force: bool = typer.Option(False, "--force", help="TensorRT: rebuild engines even when the cache has them"),
) -> None:
    """Export, calibrate and quantize one graph per profile into a bundle (--run); or compile TensorRT engines
    for an existing bundle (--bundle)."""
    profile = prefer(profiles, profile_old, "--profile", "--profiles", default="all")
    names = expand_profiles(profile)                          # a bad name fails before any work
    engine = EngineOptions(backend.value, value(precision) or "int8", dla_core, engine_cache, max_batch,
                           workspace_mb or 1024, force, print_trtexec)
    engine.check(precision_given=precision is not None)
    if (run is None) == (bundle is None):
        raise KarmmaError("give either --run RUN --out BUNDLE (a new bundle) or --bundle BUNDLE "
                          "(engines for an existing one)")
    gate_options = dict(data=data, max_drop=max_drop, calibration_method=calibration_method,
                        calibration_size=calibration_size, threads=threads)
    if bundle is not None:
        _refuse("shapes a new bundle and does nothing with --bundle",
                "or build a new bundle with --run RUN --out BUNDLE", out=out, **gate_options)
    elif backend is Backend.torch_tensorrt:
        _refuse("feeds the INT8 accuracy gate, which a torch-tensorrt build does not run",
                "or build a bundle with --backend onnxruntime or tensorrt", **gate_options)
    if backend is Backend.tensorrt and not print_trtexec:
        from karmma_edge.quantize.tensorrt_build import require_tensorrt

        require_tensorrt()                          # fail before the long bundle build, not after it
    chosen = None if profile == "all" else names
    if bundle is not None:
        if not print_trtexec and backend is not Backend.tensorrt:
            raise KarmmaError("--bundle builds engines: add --backend tensorrt (ONNX Runtime needs no engine build)")
        _engines(bundle, chosen, engine)
    else:
        _from_run(run, out, profile, engine, BuildOptions(
            run=run, out=out, profiles=profile, data=data, calibration_method=value(calibration_method),
            max_drop=1.0 if max_drop is None else max_drop,
            calibration_size=64 if calibration_size is None else calibration_size,
            threads=2 if threads is None else threads))


def _from_run(run: Path, out: Path | None, profile: str, engine: EngineOptions, opts: BuildOptions) -> None:
    """A new bundle from a training run (then its engines, for TensorRT), or a torch-tensorrt module."""
    if out is None:
        raise KarmmaError("--out BUNDLE is required with --run")
    if not run.is_dir():
        raise KarmmaError(f"--run {run}: no such run directory; train one with "
                          "`karmma-edge train student --config FILE --out RUN`")
    chosen = None if profile == "all" else expand_profiles(profile)
    if engine.backend == "torch-tensorrt":
        from karmma_edge.quantize.torch_tensorrt_build import compile_run

        for line in compile_run(run, chosen, engine.precision, out):
            typer.echo(line)
        return
    _new_bundle(opts)
    if engine.backend == "tensorrt" or engine.print_trtexec:
        _engines(out, chosen, engine)


@dataclass
class EngineOptions:
    """What `build` passes to TensorRT: used with --backend tensorrt and --print-trtexec, refused elsewhere."""

    backend: str
    precision: str
    dla_core: int | None
    engine_cache: Path | None
    max_batch: int | None
    workspace_mb: int
    force: bool
    print_trtexec: bool

    def check(self, precision_given: bool) -> None:
        trt = self.backend == "tensorrt" or self.print_trtexec
        if precision_given and not trt and self.backend == "onnxruntime":
            raise KarmmaError(f"--precision {self.precision} does nothing with --backend onnxruntime: the bundle "
                              "holds FP32 and INT8 graphs and `serve --precision` picks one; drop --precision, "
                              "or add --backend tensorrt to build engines of that precision")
        unused = [name for name, given in (("--dla-core", self.dla_core is not None),
                                           ("--max-batch", self.max_batch is not None)) if given and not trt]
        unused += [name for name, given in (("--engine-cache", self.engine_cache is not None),
                                            ("--workspace-mb", self.workspace_mb != 1024), ("--force", self.force))
                   if given and self.backend != "tensorrt"]
        if unused:
            raise KarmmaError(f"{unused[0]} applies to TensorRT engines only: add --backend tensorrt, "
                              f"or drop {unused[0]}")
        if self.dla_core is not None and self.precision == "fp32":
            raise KarmmaError("--dla-core runs only int8 or fp16: use --precision int8, or drop --dla-core")


def _refuse(why: str, fix: str, **given) -> None:
    """Exit 2 on the first of `given` options the user set, saying why it would do nothing."""
    for name, v in given.items():
        if v is not None:
            option = "--" + name.replace("_", "-")
            raise KarmmaError(f"{option} {why}: drop {option}, {fix}")


def _new_bundle(opts: BuildOptions) -> None:
    if opts.calibration_size < 1:
        raise KarmmaError(f"--calibration-size must be at least 1, got {opts.calibration_size}")
    if opts.max_drop < 0:
        raise KarmmaError(f"--max-drop must be >= 0 points, got {opts.max_drop}")
    from karmma_edge.quantize.build import build_bundle

    out = opts.out
    manifest = build_bundle(opts)
    for name, entry in manifest.profiles.items():
        acc = entry.accuracy
        typer.echo(f"{name:15s} FP32 {acc['fp32'].action_top1:5.1f}  INT8 {acc['int8'].action_top1:5.1f}  "
                   f"({entry.quantization['chosen']})")
    typer.echo(f"wrote {out} with {len(manifest.profiles)} profiles")


def _engines(bundle: Path, names: list[str] | None, engine: EngineOptions) -> None:
    """TensorRT engines for a bundle's profiles, or the trtexec lines that would build them."""
    if engine.print_trtexec:
        from karmma_edge.quantize.tensorrt_build import bundle_trtexec_commands, installed_tensorrt_major

        major = installed_tensorrt_major()
        typer.echo(f"# trtexec lines for TensorRT {major or '10 (none installed here; TensorRT 11 takes no --fp16)'}")
        for name, line in bundle_trtexec_commands(bundle, names, engine.precision, dla_core=engine.dla_core,
                                                  max_batch=engine.max_batch, major=major or 10).items():
            typer.echo(f"# {name}\n{line}")
        return
    from karmma_edge.quantize.tensorrt_build import build_bundle_engines

    for rec in build_bundle_engines(bundle, names, engine.precision, engine.engine_cache, engine.dla_core,
                                    engine.workspace_mb, progress=typer.echo, max_batch=engine.max_batch,
                                    force=engine.force):
        how = "cached" if rec["cached"] else f"built in {rec['seconds']} s"
        typer.echo(f"{rec['profile']}: {rec['engine']} ({how})")
        if rec["dla_placement"]:
            on_gpu = rec["dla_placement"]["GPU"]
            typer.echo(f"  DLA runs {len(rec['dla_placement']['DLA'])} layers, the GPU {len(on_gpu)}"
                       + (f": {', '.join(on_gpu[:10])}{' ...' if len(on_gpu) > 10 else ''}" if on_gpu else ""))


def check(
    bundle: Path = typer.Option(..., "--bundle", help=BUNDLE_HELP),
    precision: Optional[Precision] = typer.Option(None, "--precision", help="check only the graph this precision "
                                                  "builds from (int8: Q/DQ, fp16/fp32: FP32) (default: both)"),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", help="also check DLA's restrictions for this core"),
) -> None:
    """Check every graph of a bundle against TensorRT's ONNX parser rules (10.3 and 11.x); exit 2 on a finding."""
    from karmma_edge.quantize.trt_rules import check_bundle_for_build

    count = check_bundle_for_build(bundle, None, value(precision), dla_core)
    typer.echo(f"{bundle}: {count} graphs conform to TensorRT's ONNX parser rules (10.3 and 11.x)"
               + (f" and DLA's (core {dla_core})" if dla_core is not None else ""))


def register(root: typer.Typer) -> None:
    root.command()(build)
    root.command()(check)
