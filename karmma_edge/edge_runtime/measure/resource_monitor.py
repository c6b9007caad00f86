"""CPU, memory and GPU use while a benchmark row runs: psutil always, NVML where an NVIDIA driver
exposes it, tegrastats on a Jetson (which has no NVML).

A background thread samples every `interval_s`, so peaks are caught without timing calls inside the
measured loop; CPU percentages are averages over the whole window (psutil's delta since the last call).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

import psutil

# tegrastats fields (JetPack 5/6): "RAM 2107/7620MB", "GR3D_FREQ 45%" (or "GR3D_FREQ 45%@[1300]"),
# power rails "VDD_IN 4718mW/4718mW" (Orin) or "POM_5V_IN 3401/3401" (Xavier, mW).
_TEGRA_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_TEGRA_GPU = re.compile(r"\bGR3D_FREQ (\d+)%")
_TEGRA_POWER = re.compile(r"\b(?:VDD_IN|POM_5V_IN) (\d+)(?:mW)?/(\d+)")


@dataclass
class GpuSample:
    util_percent: float | None = None
    mem_mb: float | None = None
    power_w: float | None = None


@dataclass
class Usage:
    peak_rss_mb: float
    cpu_percent: float              # this process, 100 = one core busy
    system_cpu_percent: float       # whole machine, 100 = every core busy
    gpu: GpuSample


def parse_tegrastats(line: str) -> GpuSample:
    """One tegrastats line -> GPU load, memory in use (shared RAM on a Jetson) and board input power."""
    ram, gpu, power = _TEGRA_RAM.search(line), _TEGRA_GPU.search(line), _TEGRA_POWER.search(line)
    return GpuSample(util_percent=float(gpu.group(1)) if gpu else None,
                     mem_mb=float(ram.group(1)) if ram else None,
                     power_w=float(power.group(1)) / 1000 if power else None)


class _Nvml:
    """GPU 0 through NVML; `available` is False (with `note`) where NVML cannot start."""

    def __init__(self) -> None:
        self.available, self.note, self._handle = False, None, None
        try:
            import pynvml
        except ImportError:
            self.note = "no NVML (nvidia-ml-py is not installed)"
            return
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.available = True
        except pynvml.NVMLError as e:
            self.note = f"no NVML ({e})"

    def sample(self) -> GpuSample:
        n = self._nvml
        return GpuSample(util_percent=float(n.nvmlDeviceGetUtilizationRates(self._handle).gpu),
                         mem_mb=n.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20,
                         power_w=n.nvmlDeviceGetPowerUsage(self._handle) / 1000)

    def close(self) -> None:
        if self.available:
            self._nvml.nvmlShutdown()


class ResourceMonitor:
    """`with monitor.window() as w:` measures one row; `w.usage` holds its `Usage` afterwards."""

    def __init__(self, interval_s: float = 0.02):
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.nvml = _Nvml()
        self.tegrastats = shutil.which("tegrastats")
        self.gpu_note = None if self.nvml.available or self.tegrastats else (
            f"{self.nvml.note}; no tegrastats (not a Jetson): GPU figures not measured")

    def rss_mb(self) -> float:
        return self.process.memory_info().rss / 2**20

    def window(self) -> "_Window":
        return _Window(self)

    def close(self) -> None:
        self.nvml.close()


class _Window:
    def __init__(self, monitor: ResourceMonitor):
        self.m = monitor
        self.usage: Usage | None = None
        self._stop = threading.Event()
        self._peak_rss = 0.0
        self._gpu: list[GpuSample] = []
        self._tegra: subprocess.Popen | None = None

    def __enter__(self) -> "_Window":
        self._peak_rss = self.m.rss_mb()
        self.m.process.cpu_percent(None)
        psutil.cpu_percent(None)
        if self.m.tegrastats and not self.m.nvml.available:
            self._tegra = subprocess.Popen([self.m.tegrastats, "--interval", "100"], stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._read_tegrastats, daemon=True).start()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.m.interval_s):
            self._peak_rss = max(self._peak_rss, self.m.rss_mb())
            if self.m.nvml.available:
                self._gpu.append(self.m.nvml.sample())

    def _read_tegrastats(self) -> None:
        for line in self._tegra.stdout:
            self._gpu.append(parse_tegrastats(line))

    def __exit__(self, *exc) -> None:
        cpu, system = self.m.process.cpu_percent(None), psutil.cpu_percent(None)
        self._stop.set()
        self._thread.join()
        if self._tegra is not None:
            self._tegra.terminate()
            self._tegra.wait()
        self._peak_rss = max(self._peak_rss, self.m.rss_mb())
        self.usage = Usage(self._peak_rss, cpu, system, _peak(self._gpu))


def _peak(samples: list[GpuSample]) -> GpuSample:
    """Highest of each GPU figure over the window (None where never measured)."""
    def top(name: str) -> float | None:
        values = [getattr(s, name) for s in samples if getattr(s, name) is not None]
        return max(values) if values else None

    return GpuSample(top("util_percent"), top("mem_mb"), top("power_w"))
