"""The machine a benchmark ran on: CPU, cores, GPU and power mode, tool versions, JetPack, load.

Latency means little without it, so `bench` puts this in the header of every report. Every probe
degrades to a stated "absent"/"unknown" instead of failing: the same code runs on a laptop, a CI
runner and a Jetson.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import psutil

from karmma_edge.edge_runtime.cpu_features import int8_support

NV_TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


def cpu_model() -> str:
    """/proc/cpuinfo names the CPU on Linux (platform.processor() is often empty there)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Hardware", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.processor() or platform.machine()


def nvml_gpus() -> tuple[list[str], str | None]:
    """Names of the GPUs NVML sees, or ([], why not). Jetsons have no NVML: tegrastats covers them."""
    try:
        import pynvml
    except ImportError:
        return [], "no NVML (nvidia-ml-py is not installed)"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        return [], f"no NVML ({e})"
    try:
        names = [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                 for i in range(pynvml.nvmlDeviceGetCount())]
        return [n.decode() if isinstance(n, bytes) else n for n in names], None
    finally:
        pynvml.nvmlShutdown()


def jetson_model() -> str | None:
    try:
        return DEVICE_TREE_MODEL.read_text().strip("\x00\n ")
    except OSError:
        return None


def parse_l4t_release(line: str) -> str | None:
    """'# R36 (release), REVISION: 3.0, ...' -> 'R36.3.0'."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", line)
    return f"R{m.group(1)}.{m.group(2)}" if m else None


def jetpack() -> dict | None:
    """L4T release from /etc/nv_tegra_release and, where dpkg knows it, the nvidia-jetpack version."""
    if not NV_TEGRA_RELEASE.is_file():
        return None
    out = {"l4t": parse_l4t_release(NV_TEGRA_RELEASE.read_text().splitlines()[0])}
    if shutil.which("dpkg-query"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"], capture_output=True, text=True)
        out["jetpack"] = r.stdout.strip() or None
    return out


def power_mode() -> str | None:
    """Jetson power mode (`nvpmodel -q`), which changes latency several-fold."""
    if not shutil.which("nvpmodel"):
        return None
    r = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10)
    m = re.search(r"NV Power Mode:\s*(.+)", r.stdout)
    return m.group(1).strip() if m else r.stdout.strip() or None


def _version(module: str) -> str:
    """A module's version, or why it is absent. TensorRT is imported because JetPack's apt bindings
    may carry no pip metadata; the others are read from metadata so torch is never imported."""
    if module == "tensorrt":
        try:
            return importlib.import_module("tensorrt").__version__
        except (ImportError, OSError) as e:
            return f"absent ({type(e).__name__}: {str(e)[:80]})"
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def describe_machine() -> dict:
    import onnxruntime

    gpus, nvml_note = nvml_gpus()
    cpu_int8 = int8_support()
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cpu_int8": asdict(cpu_int8) | {"isa": cpu_int8.isa},
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpus or None,
        "gpu_note": nvml_note,
        "jetson": jetson_model() if NV_TEGRA_RELEASE.is_file() else None,
        "power_mode": power_mode(),
        "jetpack": jetpack(),
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "versions": {"python": platform.python_version(),
                     **{m: _version(m) for m in ("karmma-edge", "onnxruntime", "tensorrt", "torch", "numpy")}},
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
