"""`karmma-edge bench` and, on the device, `karmma-edge serve`. Never imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

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


def _parse_http(value: str | None) -> tuple[str | None, int | None]:
    from karmma_edge.errors import ConfigError

    if value is None:
        return None, None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--http {value!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
    return host or None, int(port)


def serve(
    bundle: Path = typer.Option(..., "--bundle", help="bundle directory (from `build`)"),
    rgb: Optional[str] = typer.Option(None, "--rgb", help="camera: file:PATH, cam:INDEX, rtsp://..., gst:PIPELINE, none"),
    audio: Optional[str] = typer.Option(None, "--audio", help="microphone: mic:NAME, file:PATH.wav, none"),
    http: Optional[str] = typer.Option(None, "--http", help="HOST:PORT to serve the API on [127.0.0.1:8080]"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML settings (see configs/serve-*.yaml)"),
    backend: Optional[str] = typer.Option(None, "--backend", help="onnxruntime | tensorrt [onnxruntime]"),
    precision: Optional[str] = typer.Option(None, "--precision", help="int8 | fp32 [int8]"),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="also append every prediction to this JSON Lines file"),
    realtime: Optional[bool] = typer.Option(None, "--realtime/--fast",
                                            help="pace file sources at their own rate, or read them as fast as possible"),
    loop: Optional[bool] = typer.Option(None, "--loop/--no-loop", help="start file sources over at their end"),
    log_level: str = typer.Option("info", "--log-level", help="debug | info | warning"),
) -> None:
    """Run the on-device daemon: sensors, liveness, profile switching, HTTP API (DESIGN section 8)."""
    import logging

    from karmma_edge.edge_runtime.config import load_serve_config
    from karmma_edge.edge_runtime.daemon import Daemon

    logging.getLogger("karmma_edge").setLevel(log_level.upper())
    host, port = _parse_http(http)
    cfg = load_serve_config(config, {
        "sources.rgb": rgb, "sources.audio": audio, "sources.realtime": realtime, "sources.loop": loop,
        "http.host": host, "http.port": port, "backend": backend, "precision": precision,
        "jsonl": str(jsonl) if jsonl else None})
    raise typer.Exit(Daemon(bundle, cfg).run())


def register(root: typer.Typer) -> None:
    root.command()(bench)
    root.command()(serve)
