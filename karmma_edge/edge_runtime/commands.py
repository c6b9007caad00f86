"""`karmma-edge bench` and, on the device, `karmma-edge serve`. Never imports torch."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional, get_args

import typer

from karmma_edge.cli_options import (BUNDLE_HELP, DATA_HELP, FORMAT_HELP, PROFILES_HELP, RUN_HELP, SPLIT_HELP,
                                     THREADS_HELP, DataFormat, HeldOutSplit, LogLevel, Precision, choice_enum, choices,
                                     value)
from karmma_edge.edge_runtime.backends import BACKENDS
from karmma_edge.edge_runtime.config import ServeConfig
from karmma_edge.errors import ConfigError
from karmma_edge.presets import resolve_config


def _config_choices(name: str, field: str) -> type[Enum]:
    """The values a ServeConfig field allows, so --help lists what the config file takes."""
    return choice_enum(name, get_args(ServeConfig.model_fields[field].annotation))


ServeBackend = _config_choices("ServeBackend", "backend")
ServePrecision = _config_choices("ServePrecision", "precision")
CpuInt8 = _config_choices("CpuInt8", "cpu_int8")


def bench(
    bundle: Path = typer.Option(..., "--bundle", help=BUNDLE_HELP),
    out: Path = typer.Option(..., "--out", help="report directory: results.json, results.csv, report.md, PNGs"),
    data: Optional[Path] = typer.Option(None, "--data", help=f"{DATA_HELP} with the held-out split "
                                        "(default: the run's)"),
    run: Optional[Path] = typer.Option(None, "--run", help=f"{RUN_HELP} the bundle came from: torch eager rows "
                                       "and the student's curve (needs torch)"),
    fmt: Optional[DataFormat] = typer.Option(None, "--format", help=FORMAT_HELP),
    split: Optional[HeldOutSplit] = typer.Option(None, "--split", help=f"{SPLIT_HELP}; the build's gate chose "
                                                 "on validation"),
    profiles: str = typer.Option("all", "--profiles", help=PROFILES_HELP),
    backends: str = typer.Option("onnxruntime,tensorrt", "--backends", help=f"comma list of: {', '.join(BACKENDS)}"),
    precisions: Optional[str] = typer.Option(None, "--precisions", help=f"comma list of: {choices(Precision)} "
                                             "(default: all)"),
    batch: str = typer.Option("1,4,8", "--batch", help="batch sizes, comma list"),
    runs: int = typer.Option(100, "--runs", help="timed runs per latency figure (at least 100)"),
    warmup: int = typer.Option(10, "--warmup", help="untimed runs before timing"),
    threads: int = typer.Option(2, "--threads", help=f"{THREADS_HELP} per engine"),
    compare: Optional[Path] = typer.Option(None, "--compare", help="an earlier results.json: mark regressions, "
                                                                     "exit 1 if there is any"),
    allow_few_runs: bool = typer.Option(False, "--allow-few-runs", hidden=True, help="tests only: --runs below 100"),
) -> None:
    """Latency, resources and accuracy per profile, backend and precision; the deployed curve; a report."""
    from rich.console import Console

    from karmma_edge.edge_runtime.measure.bench import BenchOptions, parse_batches, parse_list, render_table, run_bench
    from karmma_edge.edge_runtime.measure.bench_report import skipped_lines

    chosen_backends = parse_list(backends, "--backends")
    if precisions is None:
        chosen_precisions = BenchOptions.precisions
    else:
        chosen_precisions = parse_list(precisions, "--precisions")
        if "fp16" in chosen_precisions and "tensorrt" not in chosen_backends:
            raise ConfigError("--precisions fp16 does nothing with --backends "
                              f"{backends}: ONNX Runtime runs no FP16 graph; drop fp16, or add tensorrt to --backends")
    opts = BenchOptions(profiles=profiles, backends=chosen_backends, precisions=chosen_precisions,
                        batches=parse_batches(batch), runs=runs, warmup=warmup, threads=threads, run=run,
                        fmt=value(fmt), split=value(split), compare=compare, allow_few_runs=allow_few_runs)
    results = run_bench(bundle, data, out, opts)
    console = Console()
    console.print(render_table(results))
    if results.curve is not None and results.curve.max_gap is not None:
        console.print(f"deployed INT8 curve vs torch student: largest gap {results.curve.max_gap:.2f} points over p")
    for line in skipped_lines(results):
        console.print(f"skipped {line}", markup=False)
    if results.comparison is not None:
        for g in results.comparison.regressions:
            console.print(f"[bold red]REGRESSION[/] {g.kind} {g.key}: {g.old:.3f} -> {g.new:.3f} ({g.rule})")
        if not results.comparison.regressions:
            console.print(f"no regression against {compare}")
        for text in results.comparison.caveats:
            console.print(f"caveat: {text}", markup=False)
    typer.echo(f"wrote {out}/report.md, results.json, results.csv")
    if results.comparison is not None and results.comparison.regressions:
        raise typer.Exit(1)        # the report is written; a script or CI job can gate on the code


def _parse_http(value: str | None) -> tuple[str | None, int | None]:
    if value is None:
        return None, None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--http {value!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
    return host or None, int(port)


def serve(
    bundle: Path = typer.Option(..., "--bundle", help=BUNDLE_HELP),
    rgb: Optional[str] = typer.Option(None, "--rgb", help="camera: file:PATH, cam:INDEX, rtsp://..., gst:PIPELINE, none"),
    audio: Optional[str] = typer.Option(None, "--audio", help="microphone: mic:NAME, file:PATH.wav, none"),
    http: Optional[str] = typer.Option(None, "--http", help="HOST:PORT to serve the API on (default: "
                                        "127.0.0.1:8080)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML settings: a file, or a packaged preset "
                                          "(serve-files, serve-jetson) that documents every key",
                                          callback=lambda v: v and resolve_config(v)),
    backend: Optional[ServeBackend] = typer.Option(None, "--backend", help="inference backend (default: onnxruntime)"),
    precision: Optional[ServePrecision] = typer.Option(None, "--precision", help="graph precision to serve (default: int8)"),
    cpu_int8: Optional[CpuInt8] = typer.Option(None, "--cpu-int8", help="auto: FP32 on a CPU whose ONNX Runtime "
                                               "int8 kernels are not exact (x86 without VNNI) (default: auto)"),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="also append every prediction to this JSON Lines file"),
    realtime: Optional[bool] = typer.Option(None, "--realtime/--fast",
                                            help="pace file sources at their own rate, or read them as fast as possible"),
    loop: Optional[bool] = typer.Option(None, "--loop/--no-loop", help="start file sources over at their end"),
    log_level: LogLevel = typer.Option(LogLevel.info, "--log-level", help="daemon log verbosity"),
    allow_unauthenticated_remote: Optional[bool] = typer.Option(
        None, "--allow-unauthenticated-remote", help="serve a non-loopback --http address without http.token "
                                                     "(only on a network you trust)"),
) -> None:
    """Run the on-device daemon: sensors, liveness, profile switching, HTTP API."""
    import logging

    from karmma_edge.edge_runtime.config import load_serve_config
    from karmma_edge.edge_runtime.cpu_features import serving_precision
    from karmma_edge.edge_runtime.daemon import Daemon

    logging.getLogger("karmma_edge").setLevel(log_level.value.upper())
    host, port = _parse_http(http)
    cfg = load_serve_config(config, {
        "sources.rgb": rgb, "sources.audio": audio, "sources.realtime": realtime, "sources.loop": loop,
        "http.host": host, "http.port": port, "http.allow_unauthenticated_remote": allow_unauthenticated_remote,
        "backend": value(backend), "precision": value(precision), "cpu_int8": value(cpu_int8),
        "jsonl": str(jsonl) if jsonl else None})
    import onnxruntime

    served, warning = serving_precision(cfg.backend, cfg.precision, cfg.cpu_int8,
                                        onnxruntime.get_available_providers())
    if warning:
        logging.getLogger("karmma_edge").warning(warning)
        cfg = cfg.model_copy(update={"precision": served})
    raise typer.Exit(Daemon(bundle, cfg).run())


def register(root: typer.Typer) -> None:
    root.command()(bench)
    root.command()(serve)
