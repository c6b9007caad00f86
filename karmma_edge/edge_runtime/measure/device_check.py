"""`karmma-edge device-check`: the first run on a Jetson, in one command and one report (issue 13).

Checks the bundle against TensorRT's parser rules, builds every profile's engine, compares TensorRT
with ONNX Runtime on held-out clips (top-1 agreement, largest logit difference), times each plan
with trtexec and the end-to-end Python path (batch 1), and records the power mode and clocks that
the timings depend on. Sized to finish within 10 minutes on an Orin: `--clips` caps the comparison,
`--runs` the timing. No torch.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from glob import glob
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from karmma_edge.cli_options import (BUNDLE_HELP, DATA_HELP, DLA_CORE_HELP, ENGINE_CACHE_HELP, SPLIT_HELP, DataFormat,
                                     HeldOutSplit, Precision, value)

TRTEXEC_PATHS = ("/usr/src/tensorrt/bin/trtexec",)   # where JetPack puts it, off PATH
SYS_CLOCKS = {
    "gpu_devfreq": "/sys/class/devfreq/*/cur_freq",                    # GPU (and NVDLA/EMC where exposed), Hz
    "cpu_khz": "/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq",
    "emc_hz": "/sys/kernel/debug/bpmp/debug/clk/emc/rate",            # readable as root only
}


# --- the machine's state --------------------------------------------------------------------------


def _run(cmd: list[str], timeout: float = 30) -> dict[str, Any]:
    """A command's output, or why there is none; never raises."""
    if not shutil.which(cmd[0]):
        return {"command": " ".join(cmd), "error": f"{cmd[0]} not found"}
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"command": " ".join(cmd), "error": str(e)}
    out = {"command": " ".join(cmd), "returncode": r.returncode, "stdout": r.stdout.strip()}
    if r.returncode:
        out["stderr"] = r.stderr.strip()[-2000:]
    return out


def sys_clocks(patterns: dict[str, str] = SYS_CLOCKS) -> dict[str, Any]:
    """Current clock readings from /sys, each file that is readable here (path -> value)."""
    out: dict[str, Any] = {}
    for name, pattern in patterns.items():
        values = {}
        for path in sorted(glob(pattern)):
            try:
                values[path] = int(Path(path).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        out[name] = values or None
    return out


def power_and_clocks() -> dict[str, Any]:
    return {"nvpmodel": _run(["nvpmodel", "-q"]), "jetson_clocks": _run(["jetson_clocks", "--show"]),
            "sys": sys_clocks()}


# --- trtexec --------------------------------------------------------------------------------------


def find_trtexec() -> str | None:
    return shutil.which("trtexec") or next((p for p in TRTEXEC_PATHS if Path(p).is_file()), None)


_STAT = r"(min|max|mean|median|percentile\(\d+%\))\s*=\s*([\d.]+)\s*ms"


def parse_trtexec(text: str) -> dict[str, Any]:
    """trtexec's performance summary: throughput (qps) and the Latency / GPU Compute Time stats (ms)."""
    out: dict[str, Any] = {}
    m = re.search(r"Throughput:\s*([\d.]+)\s*qps", text)
    if m:
        out["throughput_qps"] = float(m.group(1))
    for label, key in (("Latency", "latency_ms"), ("GPU Compute Time", "gpu_compute_ms")):
        # "[I] Latency: min = ..." but not "[I] H2D Latency: ..."
        line = re.search(rf"(?:^|\]\s){label}:\s*(min\s*=.*)$", text, re.MULTILINE)
        if line:
            out[key] = {name.replace("percentile(", "p").rstrip("%)"): float(v)
                        for name, v in re.findall(_STAT, line.group(1))}
    return out


def time_with_trtexec(trtexec: str | None, plan: Path, shapes: dict[str, tuple[int, ...]], dla_core: int | None,
                      seconds: int = 3) -> dict[str, Any]:
    if trtexec is None:
        return {"error": "trtexec not found (JetPack puts it in /usr/src/tensorrt/bin)"}
    spec = ",".join(f"{name}:{'x'.join(map(str, shape))}" for name, shape in shapes.items())
    cmd = [trtexec, f"--loadEngine={plan}", f"--shapes={spec}", "--warmUp=500", f"--duration={seconds}"]
    if dla_core is not None:
        cmd.append(f"--useDLACore={dla_core}")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"command": " ".join(cmd), "error": str(e)}
    out = {"command": " ".join(cmd), "returncode": r.returncode, **parse_trtexec(r.stdout)}
    if r.returncode:
        out["error"] = (r.stderr or r.stdout).strip()[-2000:]
    return out


# --- TensorRT against ONNX Runtime ----------------------------------------------------------------


def agreement(trt: tuple[np.ndarray, np.ndarray], ort: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Top-1 agreement per head and the largest absolute logit difference between two engines."""
    return {
        "verb_top1_agreement": float(np.mean(trt[0].argmax(1) == ort[0].argmax(1))),
        "noun_top1_agreement": float(np.mean(trt[1].argmax(1) == ort[1].argmax(1))),
        "max_abs_logit_diff": float(max(np.abs(trt[0] - ort[0]).max(), np.abs(trt[1] - ort[1]).max())),
    }


def _p50_ms(seconds: np.ndarray) -> dict[str, float]:
    ms = seconds * 1e3
    return {"p50": float(np.median(ms)), "p90": float(np.percentile(ms, 90)), "min": float(ms.min()),
            "runs": int(len(ms))}


def run_device_check(bundle_dir: Path, data: Path | None, out: Path, precision: str = "int8",
                     dla_core: int | None = None, clips: int = 64, runs: int = 100, fmt: str = "epic100",
                     cache_dir: Path | None = None, max_batch: int | None = None,
                     progress=lambda text: None, split: str | None = None) -> dict[str, Any]:
    """Everything the first device run should prove, in `out/report.json` and `out/report.md`."""
    from karmma_edge.atomic import atomic_directory
    from karmma_edge.bundle import Bundle
    from karmma_edge.data import held_out_split
    from karmma_edge.data.arrays import load_split
    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.backends.tensorrt import TensorRTEngine
    from karmma_edge.edge_runtime.engine_cache import import_tensorrt
    from karmma_edge.edge_runtime.measure.evaluate import engine_logits, latencies
    from karmma_edge.edge_runtime.measure.machine import describe_machine
    from karmma_edge.quantize.tensorrt_build import build_bundle_engines
    from karmma_edge.quantize.trt_rules import check_bundle_for_build

    start = time.perf_counter()
    bundle = Bundle(bundle_dir)
    split = None if data is None else held_out_split(data, fmt, split)
    trt = import_tensorrt()                                    # fails first, with install steps
    report: dict[str, Any] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "bundle": str(bundle.root),
        "model_id": bundle.manifest.model_id, "tensorrt": trt.__version__, "precision": precision, "split": split,
        "dla_core": dla_core, "machine": describe_machine(), "power_and_clocks_before": power_and_clocks()}
    progress("checking the bundle against TensorRT's ONNX parser rules")
    report["conformance"] = f"{check_bundle_for_build(bundle.root, None, precision, dla_core)} graphs conform"
    progress("building engines")
    built = build_bundle_engines(bundle.root, None, precision, cache_dir, dla_core, max_batch=max_batch,
                                 progress=progress)
    held_out = None
    if data is not None:
        progress(f"decoding {split} clips")
        held_out = load_split(data, split, bundle.manifest.spec, fmt, progress=False)
        if len(held_out) > clips:
            held_out = held_out.subset(np.arange(clips))
    trtexec = find_trtexec()
    kind = "int8" if precision == "int8" else "fp32"
    profiles = {}
    for rec in built:
        profile = rec["profile"]
        progress(f"{profile}: TensorRT against ONNX Runtime, trtexec, end-to-end")
        entry: dict[str, Any] = {"engine": rec["engine"], "built_s": rec["seconds"], "cached": rec["cached"],
                                 "dla_placement": rec["dla_placement"]}
        ort = create_engine("onnxruntime", bundle.artifact(profile, kind))
        with TensorRTEngine(Path(rec["engine"])) as engine, ort:
            batch = engine.min_batch                          # 1, or a DLA plan's static batch
            feed = {t.name: np.zeros((batch, *t.shape[1:]), t.dtype) for t in engine.inputs}
            if held_out is not None:
                entry["clips"] = len(held_out)
                entry.update(agreement(engine_logits(engine, held_out), engine_logits(ort, held_out)))
                feed = {name: held_out.inputs[name][np.arange(batch) % len(held_out)] for name in feed}
            entry["end_to_end_ms"] = {"tensorrt": _p50_ms(latencies(engine, feed, runs)),
                                      "onnxruntime": _p50_ms(latencies(ort, feed, runs)), "batch": batch}
            shapes = {name: arr.shape for name, arr in feed.items()}
        entry["trtexec"] = time_with_trtexec(trtexec, Path(rec["engine"]), shapes, dla_core)
        profiles[profile] = entry
    report["profiles"] = profiles
    report["power_and_clocks_after"] = power_and_clocks()
    report["seconds"] = round(time.perf_counter() - start, 1)
    with atomic_directory(out) as root:
        (root / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (root / "report.md").write_text(render_markdown(report))
    return report


def render_markdown(report: dict[str, Any]) -> str:
    mode = report["power_and_clocks_before"]["nvpmodel"]
    lines = [
        f"# Device check: {report['model_id']}", "",
        f"{report['created']}, TensorRT {report['tensorrt']}, {report['precision']}"
        + (f", DLA core {report['dla_core']}" if report["dla_core"] is not None else "")
        + f"; {report['conformance']}; {report['seconds']} s in all"
        + (f"; clips from the {report['split']} split." if report.get("split") else "; no clips (--data)."), "",
        f"Power mode: {mode.get('stdout') or mode.get('error')}", "",
        "| profile | clips | verb agree | noun agree | max logit diff | TensorRT p50 ms | ORT p50 ms "
        "| trtexec GPU median ms | trtexec qps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for profile, e in report["profiles"].items():
        t = e["trtexec"]
        gpu = t.get("gpu_compute_ms", {}).get("median")

        def fmt(value, spec=".3f"):
            return "-" if value is None else format(value, spec)

        lines.append(
            f"| {profile} | {e.get('clips', '-')} | {fmt(e.get('verb_top1_agreement'))} "
            f"| {fmt(e.get('noun_top1_agreement'))} | {fmt(e.get('max_abs_logit_diff'), '.2e')} "
            f"| {fmt(e['end_to_end_ms']['tensorrt']['p50'])} | {fmt(e['end_to_end_ms']['onnxruntime']['p50'])} "
            f"| {fmt(gpu)} | {fmt(t.get('throughput_qps'), '.1f')} |")
    errors = sorted({e["trtexec"]["error"].splitlines()[-1] for e in report["profiles"].values()
                     if e["trtexec"].get("error")})
    if errors:
        lines += ["", *(f"trtexec: {text}" for text in errors)]
    lines += ["", "Clocks, the trtexec lines and the machine are in report.json."]
    return "\n".join(lines) + "\n"


def device_check(
    bundle: Path = typer.Option(..., "--bundle", help=BUNDLE_HELP),
    out: Path = typer.Option(..., "--out", help="report directory: report.json and report.md (replaced)"),
    data: Optional[Path] = typer.Option(None, "--data", help=f"{DATA_HELP} with the held-out split (for the "
                                        "TensorRT vs ONNX Runtime comparison)"),
    fmt: DataFormat = typer.Option(DataFormat.epic100, "--format", help="dataset format"),
    split: Optional[HeldOutSplit] = typer.Option(None, "--split", help=SPLIT_HELP),
    precision: Precision = typer.Option(Precision.int8, "--precision", help="engine precision (fp16: TensorRT 10 only)"),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", help=DLA_CORE_HELP),
    clips: int = typer.Option(64, "--clips", help="held-out clips compared per profile"),
    runs: int = typer.Option(100, "--runs", help="timed end-to-end runs per engine"),
    engine_cache: Optional[Path] = typer.Option(None, "--engine-cache", help=ENGINE_CACHE_HELP),
) -> None:
    """On the device: build every engine, compare it with ONNX Runtime, time it, record clocks; one report."""
    report = run_device_check(bundle, data, out, precision.value, dla_core, clips, runs, fmt.value, engine_cache,
                              progress=typer.echo, split=value(split))
    typer.echo(render_markdown(report))
    typer.echo(f"wrote {out}/report.json and report.md")


def register(root: typer.Typer) -> None:
    root.command("device-check")(device_check)
