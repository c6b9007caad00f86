"""TensorRT engine (DESIGN section 7): a serialized plan run with execute_async_v3 through pycuda.

Written against the documented Python API of TensorRT 10.3 (JetPack 6) and 11.x (JetPack 7).
TensorRT and pycuda are imported only when an engine is activated or a key is computed, so this
module imports anywhere; where they are missing the caller gets `BackendUnavailable` with the
install steps, never an ImportError.

A plan is tied to the TensorRT version and the GPU that built it (DESIGN section 4), so every plan
has a sidecar JSON with its `EngineKey` and SHA-256, checked before the plan is deserialized.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from karmma_edge.bundle import sha256_file
from karmma_edge.edge_runtime.backends.base import Engine, TensorSpec
from karmma_edge.errors import BackendUnavailable, BundleError, KarmmaError

PRECISIONS = ("int8", "fp16", "fp32")
SIDECAR_SUFFIX = ".key.json"
CACHE_ENV = "KARMMA_EDGE_ENGINE_CACHE"

JETSON_INSTALL_HINT = (
    "On a Jetson, JetPack ships TensorRT and its Python bindings for the system Python 3.10: "
    "`sudo apt install python3-libnvinfer` (or the whole `sudo apt install nvidia-jetpack`), "
    "then `pip install pycuda`; on an x86 host with an NVIDIA GPU, `pip install tensorrt pycuda`."
)


def rebuild_hint(profile: str = "PROFILE") -> str:
    return (
        "rebuild it on this device with "
        f"`karmma-edge build --bundle BUNDLE --profile {profile} --backend tensorrt`"
    )


# --- lazy imports -------------------------------------------------------------------------------


MIN_TENSORRT = (10, 3)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt as trt
    except (ImportError, OSError) as e:  # OSError: bindings present but libnvinfer cannot be loaded
        raise BackendUnavailable(f"TensorRT is not installed here ({e}). {JETSON_INSTALL_HINT}") from None
    if _version_tuple(trt.__version__)[:2] < MIN_TENSORRT:
        # 8.6 (JetPack 6.0) lacks ExecutionContextAllocationStrategy and STRONGLY_TYPED, among others.
        raise BackendUnavailable(
            f"TensorRT {trt.__version__} is too old: karmma-edge needs TensorRT 10.3 or newer, which is "
            "JetPack 6.1 or later on a Jetson (JetPack 7 brings TensorRT 11); upgrade JetPack, or use "
            "`--backend onnxruntime`"
        )
    return trt


def import_pycuda() -> ModuleType:
    try:
        import pycuda.driver as cuda
    except ImportError as e:
        raise BackendUnavailable(
            f"pycuda is not installed here ({e}); the TensorRT backend moves buffers with it. "
            f"{JETSON_INSTALL_HINT}"
        ) from None
    try:
        cuda.init()
    except cuda.Error as e:  # libcuda present but no usable GPU or driver
        raise BackendUnavailable(f"CUDA cannot start here ({e}): the TensorRT backend needs an NVIDIA GPU") from None
    return cuda


# --- the engine-cache key -----------------------------------------------------------------------


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EngineKey":
        names = {f.name for f in fields(cls)}
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


def current_device_key(profile: str, precision: str, onnx_sha256: str, dla_core: int | None = None) -> EngineKey:
    """The key a plan built here, now, from that ONNX file would carry."""
    if precision not in PRECISIONS:
        raise KarmmaError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    trt = import_tensorrt()
    name, capability = gpu_identity()
    return EngineKey(profile, precision, onnx_sha256, trt.__version__, name, capability, dla_core)


# --- the engine cache on disk -------------------------------------------------------------------


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


def sidecar_record(plan: Path, key: EngineKey, **extra: Any) -> dict[str, Any]:
    return {"key": key.to_dict(), "plan_sha256": sha256_file(plan), **extra}


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
        record = json.loads(side.read_text())
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


# --- device memory ------------------------------------------------------------------------------


def engine_device_memory_size(engine: Any) -> int:
    # device_memory_size_v2 arrived in 10.1 and device_memory_size was removed in 11.
    if hasattr(engine, "device_memory_size_v2"):
        return int(engine.device_memory_size_v2)
    return int(engine.device_memory_size)


def _point_context(context: Any, address: int, size: int) -> None:
    # set_device_memory(memory, size) (setDeviceMemoryV2) is 10.1+ and 11; the write-only
    # `device_memory` property is the deprecated 10.0 spelling.
    if hasattr(context, "set_device_memory"):
        context.set_device_memory(address, size)
    else:
        context.device_memory = address


class SharedScratch:
    """One device-memory block shared by the execution contexts of all profile engines.

    The profile engines never run at once (the runtime runs one profile at a time), so their
    activation memory can overlap: the block is as large as the largest engine needs, not the sum.
    `lock` serialises execution so two threads cannot use the block at the same moment.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._block = None
        self._size = 0
        self._contexts: list[Any] = []

    @property
    def nbytes(self) -> int:
        return self._size

    def attach(self, context: Any, size: int) -> None:
        """Point a USER_MANAGED context at the block, growing it (and re-pointing every context
        already attached) when this engine needs more than the block holds."""
        with self.lock:
            if self._block is None or size > self._size:
                self._grow(max(size, 1))   # an engine may need no scratch; the pointer must still be valid
            self._contexts.append(context)
            _point_context(context, int(self._block), self._size)

    def detach(self, context: Any) -> None:
        with self.lock:
            self._contexts = [c for c in self._contexts if c is not context]
            if not self._contexts:
                self.close()

    def close(self) -> None:
        if self._block is not None:
            self._block.free()
        self._block, self._size = None, 0

    def _grow(self, size: int) -> None:
        cuda = import_pycuda()
        block = cuda.mem_alloc(size)
        for context in self._contexts:
            _point_context(context, int(block), size)
        if self._block is not None:
            self._block.free()
        self._block, self._size = block, size


# --- the engine ---------------------------------------------------------------------------------


class _PrimaryContext:
    """The GPU's primary CUDA context, made current around each call.

    The daemon activates engines in one thread and infers in another, and a CUDA context is current
    per thread; the primary context is also the one TensorRT and other libraries share.
    """

    def __init__(self, cuda: ModuleType, device: int = 0):
        self._cuda = cuda
        self._ctx = cuda.Device(device).retain_primary_context()

    def __enter__(self) -> None:
        self._ctx.push()

    def __exit__(self, *exc: object) -> None:
        self._cuda.Context.pop()

    def release(self) -> None:
        self._ctx.detach()


class TensorRTEngine(Engine):
    backend = "tensorrt"

    def __init__(self, path: Path, expected_key: EngineKey | None = None,
                 scratch: SharedScratch | None = None, stream: Any = None):
        super().__init__(path)
        self.expected_key = expected_key
        self.key: EngineKey | None = None
        self.scratch = scratch
        self.max_batch = 0
        self._user_stream = stream
        self._stream = None
        self._cuda = None
        self._primary: _PrimaryContext | None = None
        self._logger = self._runtime = self._engine = self._context = None
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, Any] = {}

    def _activate(self) -> None:
        trt = import_tensorrt()
        self._cuda = import_pycuda()
        self.key = check_engine_key(self.path, self.expected_key)
        if self.key.tensorrt_version != trt.__version__:
            raise BundleError(
                f"TensorRT engine {self.path.name} was built with TensorRT {self.key.tensorrt_version}, "
                f"this device runs {trt.__version__}; {rebuild_hint(self.key.profile)}"
            )
        self._primary = _PrimaryContext(self._cuda)
        try:
            with self._primary:
                self._load(trt)
                self._allocate(trt)
        except BaseException:
            self._release()  # a half-activated engine must not hold GPU memory or the scratch
            raise

    def _load(self, trt: ModuleType) -> None:
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        if self.key.dla_core is not None:
            self._runtime.DLA_core = self.key.dla_core   # a DLA plan runs on the core it was built for
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise BundleError(f"TensorRT cannot deserialize {self.path}; {rebuild_hint(self.key.profile)}")
        if self.scratch is None:
            self._context = self._engine.create_execution_context()
        else:
            self._context = self._engine.create_execution_context(
                trt.ExecutionContextAllocationStrategy.USER_MANAGED
            )
            self.scratch.attach(self._context, engine_device_memory_size(self._engine))
        self._stream = self._user_stream or self._cuda.Stream()

    def _allocate(self, trt: ModuleType) -> None:
        """Pinned host and device buffers per IO tensor, sized for the profile's largest batch,
        bound once with set_tensor_address: inference then only copies."""
        engine, cuda = self._engine, self._cuda
        self.inputs, self.outputs = [], []
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.max_batch = min(int(engine.get_tensor_profile_shape(n, 0)[2][0]) for n in inputs)
        for name in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            dims = tuple(int(d) for d in engine.get_tensor_shape(name))
            shape = tuple("B" if d < 0 else d for d in dims)
            volume = self.max_batch * int(np.prod([d for d in dims[1:]], dtype=np.int64))
            self._host[name] = cuda.pagelocked_empty(volume, dtype)
            self._device[name] = cuda.mem_alloc(max(self._host[name].nbytes, 1))
            self._context.set_tensor_address(name, int(self._device[name]))
            if name in inputs:
                self.inputs.append(TensorSpec(name, shape, dtype))
            else:
                self.outputs.append(name)

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = self._batch_of(feed)
        lock = self.scratch.lock if self.scratch is not None else nullcontext()
        with self._primary, lock:
            for spec in self.inputs:
                arr = np.ascontiguousarray(feed[spec.name])
                self._context.set_input_shape(spec.name, arr.shape)
                host = self._host[spec.name][: arr.size]
                np.copyto(host, arr.reshape(-1))
                self._cuda.memcpy_htod_async(self._device[spec.name], host, self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise RuntimeError(f"TensorRT could not run {self.path.name} at batch {batch}")
            views = {}
            for name in self.outputs:
                shape = tuple(int(d) for d in self._context.get_tensor_shape(name))
                views[name] = self._host[name][: int(np.prod(shape, dtype=np.int64))].reshape(shape)
                self._cuda.memcpy_dtoh_async(views[name], self._device[name], self._stream)
            self._stream.synchronize()
            return {name: view.copy() for name, view in views.items()}

    def _batch_of(self, feed: dict[str, np.ndarray]) -> int:
        batches = {feed[s.name].shape[0] for s in self.inputs}
        if len(batches) != 1:
            raise KarmmaError(f"engine {self.path.name}: inputs disagree on the batch size: {sorted(batches)}")
        batch = batches.pop()
        if not 1 <= batch <= self.max_batch:
            raise KarmmaError(
                f"engine {self.path.name} was built for batches 1..{self.max_batch}, got {batch}; "
                "rebuild it with a larger max batch"
            )
        return batch

    def _deactivate(self) -> None:
        self._release()

    def _release(self) -> None:
        with self._primary:
            if self.scratch is not None and self._context is not None:
                self.scratch.detach(self._context)
            for buf in self._device.values():
                buf.free()
            self._device, self._host = {}, {}
            self._context = self._engine = self._runtime = None
            self._stream = None
        self._primary.release()
        self._primary = None


def open_bundle_engines(bundle_root: Path, precision: str = "int8", cache_dir: Path | None = None,
                        dla_core: int | None = None, profiles: list[str] | None = None
                        ) -> dict[str, TensorRTEngine]:
    """One (not yet activated) engine per profile of a bundle, all sharing one scratch block.

    Each engine expects the key this device would give a plan built from the bundle's verified ONNX,
    so a plan from another device, TensorRT or bundle is refused on activation.
    """
    from karmma_edge.bundle import Bundle

    bundle = Bundle(bundle_root)
    kind = "int8" if precision == "int8" else "fp32"
    cache = engine_cache_dir(cache_dir)
    scratch = SharedScratch()
    engines = {}
    for profile in profiles or bundle.profiles:
        bundle.artifact(profile, kind)  # verifies the ONNX the key names is the one in the manifest
        sha = bundle.manifest.profiles[profile].artifacts[kind].sha256
        key = current_device_key(profile, precision, sha, dla_core)
        engines[profile] = TensorRTEngine(engine_path_for(cache, key), expected_key=key, scratch=scratch)
    return engines
