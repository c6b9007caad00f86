"""The TensorRT engine cache (DESIGN section 4), shared by `build` and the runtime. No torch, no GPU.

A plan is tied to the TensorRT version and the GPU that built it, and to the build's batch range
and workspace, so every plan has a sidecar JSON with its `EngineKey` and SHA-256, checked before
the plan is deserialized. The file name holds a digest of the whole key: a build that asks for
another batch range or workspace gets its own plan instead of reusing one built for less.

TensorRT, pycuda and NVML are imported only when a key for this device is computed, so the module
imports anywhere; where they are missing the caller gets `BackendUnavailable` with install steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

from karmma_edge.atomic import atomic_write
from karmma_edge.bundle import sha256_file
from karmma_edge.errors import BackendUnavailable, BundleError, KarmmaError
from karmma_edge.targets import PRECISIONS

SIDECAR_SUFFIX = ".key.json"
CACHE_ENV = "KARMMA_EDGE_ENGINE_CACHE"
MIN_TENSORRT = (10, 3)
DEFAULT_MAX_BATCH = 8
DEFAULT_WORKSPACE_MB = 1024

JETSON_INSTALL_HINT = (
    "On a Jetson, JetPack ships TensorRT and its Python bindings for the system Python 3.10: "
    "`sudo apt install python3-libnvinfer` (or the whole `sudo apt install nvidia-jetpack`), "
    "then `pip install pycuda`, which builds from source there (needs `sudo apt install python3-dev` "
    "and CUDA's bin on PATH, e.g. `export PATH=/usr/local/cuda/bin:$PATH`; docs/on-device.md); on an x86 "
    "host with an NVIDIA GPU, `pip install tensorrt pycuda`."
)


def rebuild_hint(profile: str = "PROFILE") -> str:
    return (
        "rebuild it on this device with "
        f"`karmma-edge build --bundle BUNDLE --profile {profile} --backend tensorrt`"
    )


# --- which TensorRT and GPU -----------------------------------------------------------------------


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt as trt
    except (ImportError, OSError) as e:  # OSError: bindings present but libnvinfer cannot be loaded
        raise BackendUnavailable(f"TensorRT is not installed here ({e}). {JETSON_INSTALL_HINT}") from None
    if version_tuple(trt.__version__)[:2] < MIN_TENSORRT:
        # 8.6 (JetPack 6.0) lacks ExecutionContextAllocationStrategy and STRONGLY_TYPED, among others.
        raise BackendUnavailable(
            f"TensorRT {trt.__version__} is too old: karmma-edge needs TensorRT 10.3 or newer, which is "
            "JetPack 6.1 or later on a Jetson (JetPack 7 brings TensorRT 11); upgrade JetPack, or use "
            "`--backend onnxruntime`"
        )
    return trt


def gpu_identity(device: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor"): pycuda first, it works on Jetsons, which lack
    NVML; nvidia-ml-py where pycuda is missing (x86 hosts that only build)."""
    try:
        import pycuda.driver as cuda
    except ImportError:
        return _gpu_identity_nvml(device)
    try:
        cuda.init()
        dev = cuda.Device(device)
        major, minor = dev.compute_capability()
        return dev.name(), f"{major}.{minor}"
    except cuda.Error as e:
        raise BackendUnavailable(f"CUDA cannot see GPU {device} ({e}); TensorRT engines need an NVIDIA GPU") from None


def _gpu_identity_nvml(device: int) -> tuple[str, str]:
    try:
        import pynvml
    except ImportError:
        raise BackendUnavailable(
            f"cannot identify the GPU: neither pycuda nor nvidia-ml-py is installed. {JETSON_INSTALL_HINT}"
        ) from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:  # no driver / no libnvidia-ml (every Jetson before Thor)
        raise BackendUnavailable(
            f"NVML is unavailable here ({e}) and pycuda is not installed, so the GPU cannot be "
            f"identified. {JETSON_INSTALL_HINT}"
        ) from None
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(device)
        name = pynvml.nvmlDeviceGetName(handle)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    except pynvml.NVMLError as e:
        raise BackendUnavailable(f"NVML cannot query GPU {device}: {e}") from None
    finally:
        pynvml.nvmlShutdown()
    return (name.decode() if isinstance(name, bytes) else name), f"{major}.{minor}"


# --- the key --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineKey:
    """Everything a plan depends on (DESIGN section 4); a plan is reused only when all of it matches."""

    profile: str
    precision: str
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str         # "8.7"
    dla_core: int | None = None
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = DEFAULT_MAX_BATCH
    workspace_mb: int = DEFAULT_WORKSPACE_MB

    # What the build chose rather than what the device is: the runtime takes any of these.
    BUILD_FIELDS = ("min_batch", "opt_batch", "max_batch", "workspace_mb")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EngineKey":
        names = {f.name for f in fields(cls)}
        # A key written before the batch range was part of it lacks those fields: it must be rebuilt.
        missing = sorted(names - {"dla_core"} - set(data))
        if missing:
            raise BundleError(f"engine key lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json(cls, text: str) -> "EngineKey":
        return cls.from_dict(json.loads(text))

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def mismatches(self, other: "EngineKey") -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]

    def same_device(self, other: "EngineKey") -> bool:
        return all(name in self.BUILD_FIELDS for name in self.mismatches(other))

    @property
    def batches(self) -> tuple[int, int, int]:
        return self.min_batch, self.opt_batch, self.max_batch


def current_device_key(profile: str, precision: str, onnx_sha256: str, dla_core: int | None = None,
                       batches: tuple[int, int, int] = (1, 1, DEFAULT_MAX_BATCH),
                       workspace_mb: int = DEFAULT_WORKSPACE_MB) -> EngineKey:
    """The key a plan built here, now, from that ONNX file with those build options would carry."""
    if precision not in PRECISIONS:
        raise KarmmaError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if not 1 <= batches[0] <= batches[1] <= batches[2]:
        raise KarmmaError(f"batches must satisfy 1 <= min <= opt <= max, got {'/'.join(map(str, batches))}")
    trt = import_tensorrt()
    name, capability = gpu_identity()
    return EngineKey(profile, precision, onnx_sha256, trt.__version__, name, capability, dla_core,
                     *batches, workspace_mb)


# --- the cache on disk ----------------------------------------------------------------------------


def engine_cache_dir(override: Path | None = None) -> Path:
    """Where plans live: `override`, else $KARMMA_EDGE_ENGINE_CACHE, else the user's cache directory.

    Outside the bundle on purpose: the bundle moves between machines unchanged, plans do not.
    One directory serves every bundle because the key holds the ONNX hash.
    """
    if override is not None:
        return Path(override)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "karmma-edge" / "engines"


def engine_path_for(cache_dir: Path, key: EngineKey) -> Path:
    return Path(cache_dir) / f"{key.profile}.{key.precision}.{key.digest()}.plan"


def sidecar_path(plan: Path) -> Path:
    return Path(plan).with_name(Path(plan).name + SIDECAR_SUFFIX)


def timing_cache_path(cache_dir: Path, key: EngineKey) -> Path:
    """Tactic timings are only valid for one TensorRT and GPU, so each pair gets its own file."""
    gpu = "".join(c if c.isalnum() else "-" for c in key.gpu_name)
    return Path(cache_dir) / f"timing.trt{key.tensorrt_version}.{gpu}.sm{key.compute_capability}.cache"


def sidecar_record(plan: Path, key: EngineKey, **extra: Any) -> dict[str, Any]:
    return {"key": key.to_dict(), "plan_sha256": sha256_file(plan), **extra}


def store_plan(plan_path: Path, plan: bytes | memoryview, key: EngineKey, **extra: Any) -> Path:
    """Write a plan and then its sidecar: a plan without a valid sidecar is never taken from the cache."""
    atomic_write(plan_path, plan)
    record = sidecar_record(plan_path, key, **extra)
    atomic_write(sidecar_path(plan_path), (json.dumps(record, indent=2) + "\n").encode())
    return Path(plan_path)


def read_sidecar(plan: Path) -> dict[str, Any]:
    side = sidecar_path(plan)
    record = json.loads(side.read_text())
    if not isinstance(record, dict):
        raise TypeError("not a JSON object")
    return record


def check_engine_key(plan: Path, expected: EngineKey | None = None) -> EngineKey:
    """The key of a plan on disk, after checking the plan's hash and, if given, the expected key.

    Refuses (BundleError) a plan without a sidecar, one whose bytes changed since it was built, and
    one built for another key, naming the fields that differ and how to rebuild.
    """
    plan = Path(plan)
    profile = expected.profile if expected else "PROFILE"
    side = sidecar_path(plan)
    if not plan.is_file():
        raise BundleError(f"TensorRT engine {plan} does not exist; {rebuild_hint(profile)}")
    if not side.is_file():
        raise BundleError(f"TensorRT engine {plan} has no key file {side.name}; {rebuild_hint(profile)}")
    try:
        record = read_sidecar(plan)
        key = EngineKey.from_dict(record["key"])
        plan_sha = record["plan_sha256"]
    except (json.JSONDecodeError, KeyError, TypeError, BundleError) as e:
        raise BundleError(f"{side} is not a valid engine key file ({e}); {rebuild_hint(profile)}") from None
    if sha256_file(plan) != plan_sha:
        raise BundleError(
            f"TensorRT engine {plan} does not match the SHA-256 in {side.name}: the file was changed or "
            f"truncated; {rebuild_hint(key.profile)}"
        )
    if expected is not None and key != expected:
        diffs = "; ".join(
            f"{name} is {getattr(key, name)!r}, this device needs {getattr(expected, name)!r}"
            for name in key.mismatches(expected)
        )
        raise BundleError(f"TensorRT engine {plan.name} was built for another setup: {diffs}; {rebuild_hint(expected.profile)}")
    return key


def is_cached(plan: Path, key: EngineKey) -> bool:
    try:
        check_engine_key(plan, key)
    except BundleError:
        return False
    return True


def find_plan(cache_dir: Path, wanted: EngineKey) -> tuple[Path, EngineKey]:
    """The cached plan for `wanted`'s profile, precision, ONNX, TensorRT, GPU and DLA core, whatever
    batch range and workspace it was built with: the largest max batch, then the newest.

    Without one, `wanted`'s own path and key: activating it then says the plan is missing and how to
    build it.
    """
    found = []
    for plan in Path(cache_dir).glob(f"{wanted.profile}.{wanted.precision}.*.plan"):
        try:
            key = EngineKey.from_dict(read_sidecar(plan)["key"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, BundleError):
            continue
        if key.same_device(wanted):
            found.append((key.max_batch, plan.stat().st_mtime, plan, key))
    if not found:
        return engine_path_for(cache_dir, wanted), wanted
    _, _, plan, key = max(found, key=lambda item: item[:2])
    return plan, key
