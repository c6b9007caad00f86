"""TensorRT engine (DESIGN section 7): a serialized plan run with execute_async_v3 through pycuda.

Written against the documented Python API of TensorRT 10.3 (JetPack 6.1+) and 11.x (JetPack 7);
tests/test_trt_api.py checks every call against both versions' bindings. TensorRT and pycuda are
imported only when an engine is activated, so this module imports anywhere; where they are missing
the caller gets `BackendUnavailable` with the install steps, never an ImportError.

The plan cache and its keys live in `engine_cache`, shared with `build`.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from karmma_edge.edge_runtime.backends.base import Engine, TensorSpec
from karmma_edge.edge_runtime.engine_cache import (
    JETSON_INSTALL_HINT,
    EngineKey,
    check_engine_key,
    current_device_key,
    engine_cache_dir,
    find_plan,
    import_tensorrt,
    rebuild_hint,
)
from karmma_edge.errors import BackendUnavailable, BundleError, KarmmaError


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


class CudaContext:
    """The GPU's primary CUDA context, retained once for every engine and the scratch block.

    Each user `acquire`s it and `release`s it; it is detached when the last one releases, and every
    user frees its device memory (inside `with context:`) before releasing, so nothing is freed into
    a detached context, which pycuda would ignore and leak. `with context:` makes it current around
    each call: the daemon activates engines in one thread and infers in another, and a context is
    current per thread; the primary context is also the one TensorRT and other libraries share.
    """

    def __init__(self, device: int = 0):
        self.device = device
        self.cuda: ModuleType | None = None
        self._ctx = None
        self._users = 0
        self._lock = threading.Lock()

    @property
    def users(self) -> int:
        return self._users

    def acquire(self) -> None:
        with self._lock:
            if self._ctx is None:
                self.cuda = import_pycuda()
                self._ctx = self.cuda.Device(self.device).retain_primary_context()
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._ctx.detach()
                self._ctx = None

    def __enter__(self) -> "CudaContext":
        self._ctx.push()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cuda.Context.pop()


# --- device memory ------------------------------------------------------------------------------


def engine_device_memory_size(engine: Any) -> int:
    # device_memory_size_v2 (10.1+; device_memory_size is gone in 11).
    return int(engine.device_memory_size_v2)


class SharedScratch:
    """One device-memory block shared by the execution contexts of all profile engines.

    The profile engines never run at once (the runtime runs one profile at a time), so their
    activation memory can overlap: the block is as large as the largest engine needs, not the sum.
    `lock` serialises execution so two threads cannot use the block at the same moment. The block
    holds its own reference on the CUDA context, released only after the block is freed.
    """

    def __init__(self, context: CudaContext | None = None) -> None:
        self.gpu = context or CudaContext()
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
            context.set_device_memory(int(self._block), self._size)

    def detach(self, context: Any) -> None:
        with self.lock:
            self._contexts = [c for c in self._contexts if c is not context]
            if not self._contexts:
                self.close()

    def close(self) -> None:
        if self._block is None:
            return
        with self.gpu:
            self._block.free()
        self._block, self._size = None, 0
        self.gpu.release()

    def _grow(self, size: int) -> None:
        if self._block is None:
            self.gpu.acquire()
        with self.gpu:
            block = self.gpu.cuda.mem_alloc(size)
            for context in self._contexts:
                context.set_device_memory(int(block), size)
            if self._block is not None:
                self._block.free()
        self._block, self._size = block, size


# --- the engine ---------------------------------------------------------------------------------


class TensorRTEngine(Engine):
    backend = "tensorrt"

    def __init__(self, path: Path, expected_key: EngineKey | None = None,
                 scratch: SharedScratch | None = None, stream: Any = None, context: CudaContext | None = None):
        super().__init__(path)
        self.expected_key = expected_key
        self.key: EngineKey | None = None
        self.scratch = scratch
        self.min_batch = self.max_batch = 0
        self._user_stream = stream
        self._stream = None
        self._cuda = None
        self._gpu = context or (scratch.gpu if scratch is not None else CudaContext())
        self._acquired = False
        self._logger = self._runtime = self._engine = self._context = None
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, Any] = {}

    def _activate(self) -> None:
        trt = import_tensorrt()
        self.key = check_engine_key(self.path, self.expected_key)
        if self.key.tensorrt_version != trt.__version__:
            raise BundleError(
                f"TensorRT engine {self.path.name} was built with TensorRT {self.key.tensorrt_version}, "
                f"this device runs {trt.__version__}; {rebuild_hint(self.key.profile)}"
            )
        self._gpu.acquire()
        self._acquired = True
        self._cuda = self._gpu.cuda
        try:
            with self._gpu:
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
        ranges = [engine.get_tensor_profile_shape(n, 0) for n in inputs]   # (min, opt, max) shapes
        self.min_batch = max(int(r[0][0]) for r in ranges)
        self.max_batch = min(int(r[2][0]) for r in ranges)
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
        with self._gpu, lock:
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
        if not self.min_batch <= batch <= self.max_batch:
            span = f"batch {self.max_batch}" if self.min_batch == self.max_batch else \
                f"batches {self.min_batch}..{self.max_batch}"
            raise KarmmaError(
                f"engine {self.path.name} was built for {span}, got {batch}; rebuild it with "
                "`karmma-edge build --bundle BUNDLE --backend tensorrt --max-batch N`"
            )
        return batch

    def _deactivate(self) -> None:
        self._release()

    def _release(self) -> None:
        """Free everything this engine holds on the GPU while the context is alive, then release it."""
        if not self._acquired:
            return
        with self._gpu:
            for buf in self._device.values():
                buf.free()
            for host in self._host.values():
                allocation = getattr(host, "base", None)     # pycuda's pinned HostAllocation
                if hasattr(allocation, "free"):
                    allocation.free()
            self._device, self._host = {}, {}
            if self.scratch is not None and self._context is not None:
                self.scratch.detach(self._context)
            # TensorRT's objects free their device memory when dropped: drop them inside the context.
            self._context = self._engine = self._runtime = None
            self._stream = None
        self._gpu.release()
        self._acquired = False


def open_bundle_engines(bundle_root: Path, precision: str = "int8", cache_dir: Path | None = None,
                        dla_core: int | None = None, profiles: list[str] | None = None
                        ) -> dict[str, TensorRTEngine]:
    """One (not yet activated) engine per profile of a bundle, all sharing one scratch block and one
    CUDA context.

    Each engine takes the plan this device built from the bundle's verified ONNX (any batch range,
    the largest first), so a plan from another device, TensorRT or bundle is refused on activation.
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
        plan, key = find_plan(cache, current_device_key(profile, precision, sha, dla_core))
        engines[profile] = TensorRTEngine(plan, expected_key=key, scratch=scratch)
    return engines
