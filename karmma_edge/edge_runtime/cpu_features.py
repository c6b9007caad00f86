"""Which int8 instructions this processor has, and whether ONNX Runtime's int8 CPU kernels are exact on it.

ONNX Runtime's quantization docs: on x86-64 with AVX2 or AVX-512 but no VNNI, its int8 kernels
multiply with VPMADDUBSW, which adds pairs of 8-bit products into a *saturating* 16-bit sum; with
VNNI (AVX512-VNNI, AVX-VNNI) or AMX, products accumulate in 32 bits. Arm64 accumulates in 32 bits
(SDOT, or widening multiply-accumulate). So a Q/DQ graph's fast path loses accuracy exactly on x86
processors without VNNI, and the runtime must not silently serve it there.

Read from /proc/cpuinfo (Linux: every host this runs on): a flag list needs no cpuid library.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# The flags that decide the int8 path, in the order a reader wants them named.
X86_INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
X86_EXACT = ("avx512_vnni", "avx_vnni", "amx_int8")
ARM_INT8_FLAGS = ("asimd", "asimddp", "i8mm", "sve")


@dataclass(frozen=True)
class Int8Support:
    arch: str                  # platform.machine(): x86_64, aarch64, ...
    flags: tuple[str, ...]     # the int8-relevant instruction-set flags present
    exact: bool                # ONNX Runtime's int8 CPU kernels accumulate without saturation
    reason: str

    @property
    def isa(self) -> str:
        """E.g. "x86_64: avx2 avx512f avx512bw avx512_vnni" (what a report header names)."""
        return f"{self.arch}: {' '.join(self.flags) or 'no SIMD int8 flags found'}"


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Every flag of the first processor entry ("flags" on x86, "Features" on Arm)."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def int8_support(cpuinfo: str | None = None, arch: str | None = None) -> Int8Support:
    arch = arch or platform.machine()
    flags = cpu_flags(cpuinfo)
    if arch in ("x86_64", "AMD64", "i686"):
        present = tuple(f for f in X86_INT8_FLAGS if f in flags)
        exact = any(f in flags for f in X86_EXACT)
        reason = ("VNNI/AMX: int8 products accumulate in 32 bits" if exact else
                  "no VNNI: ONNX Runtime's int8 kernels add products in saturating 16-bit pairs (VPMADDUBSW) "
                  "and lose accuracy")
        return Int8Support(arch, present, exact, reason)
    if arch in ("aarch64", "arm64"):
        present = tuple(f for f in ARM_INT8_FLAGS if f in flags)
        return Int8Support(arch, present, True, "Arm64: int8 products accumulate in 32 bits")
    return Int8Support(arch, (), False, f"unknown processor family {arch!r}: int8 kernels not known to be exact")


def serving_precision(backend: str, precision: str, cpu_int8: str, providers: list[str],
                      support: Int8Support | None = None) -> tuple[str, str | None]:
    """The precision `serve` runs, and a warning when it is not the one asked for.

    INT8 on ONNX Runtime's CPU kernels of a processor where they are not exact serves worse predictions
    than the bundle promises, so `cpu_int8="auto"` runs FP32 there instead; `"force"` keeps INT8.
    """
    gpu = any(p in providers for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider"))
    if backend != "onnxruntime" or precision != "int8" or gpu or cpu_int8 == "force":
        return precision, None
    support = support or int8_support()
    if support.exact:
        return precision, None
    return "fp32", (f"serving FP32, not INT8: {support.reason} ({support.isa}); pass --cpu-int8 force to serve "
                    "INT8 anyway")
