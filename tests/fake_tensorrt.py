"""Stand-ins for `tensorrt` and `pycuda.driver` where there is no GPU (issue 13).

Only the hardware is faked: the code under test is the code that runs on the device. A "plan" is a
JSON record of the ONNX file and the optimization profile; its engine runs that ONNX file with ONNX
Runtime, reading inputs from and writing outputs to fake device memory through the same
set_tensor_address / memcpy calls pycuda would serve, and refuses batches outside the profile as
TensorRT does. The fake driver records every allocation with the primary context it was made in,
and every free, so a test can prove nothing is freed into a detached context.
"""

from __future__ import annotations

import enum
import itertools
import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_NP = {"FLOAT": np.float32, "UINT8": np.uint8, "INT32": np.int32, "INT64": np.int64}


class DataType(enum.IntEnum):
    FLOAT = 0
    UINT8 = 1
    INT32 = 2
    INT64 = 3


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


# --- pycuda.driver --------------------------------------------------------------------------------


@dataclass
class Allocation:
    address: int
    size: int
    context: "PrimaryContext"
    memory: bytearray
    freed_alive: bool | None = None       # None: never freed; else whether its context was alive then

    def __int__(self) -> int:
        return self.address

    def free(self) -> None:
        if self.freed_alive is None:
            self.freed_alive = self.context.alive
            self.context.driver.memory.pop(self.address, None)


@dataclass
class PrimaryContext:
    driver: "FakeCuda"
    retains: int = 0

    @property
    def alive(self) -> bool:
        return self.retains > 0

    def push(self) -> None:
        assert self.alive, "push of a detached context"
        self.driver.stack.append(self)

    def detach(self) -> None:
        self.retains -= 1
        self.driver.events.append("detach")


@dataclass
class FakeCuda:
    """The pycuda.driver calls the backend makes, with a record of what happened."""

    name: str = "Orin (fake)"
    capability: tuple[int, int] = (8, 7)
    stack: list[PrimaryContext] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    memory: dict[int, Allocation] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    primary: PrimaryContext | None = None
    retain_calls: int = 0
    _addresses: Any = field(default_factory=lambda: itertools.count(0x10000, 0x10000))

    class Error(Exception):
        pass

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("pycuda.driver")
        driver = self

        class Device:
            def __init__(self, index: int):
                self.index = index

            @staticmethod
            def count() -> int:
                return 1

            def name(self) -> str:
                return driver.name

            def compute_capability(self) -> tuple[int, int]:
                return driver.capability

            def retain_primary_context(self) -> PrimaryContext:
                driver.retain_calls += 1
                if driver.primary is None or not driver.primary.alive:
                    driver.primary = PrimaryContext(driver)
                driver.primary.retains += 1
                return driver.primary

        class Context:
            @staticmethod
            def pop() -> None:
                driver.stack.pop()

        class Stream:
            handle = 1

            def synchronize(self) -> None:
                pass

        mod.Error = FakeCuda.Error
        mod.Device, mod.Context, mod.Stream = Device, Context, Stream
        mod.init = lambda: None
        mod.mem_alloc = self.mem_alloc
        mod.pagelocked_empty = lambda n, dtype: np.empty(n, dtype)
        mod.memcpy_htod_async = self.htod
        mod.memcpy_dtoh_async = self.dtoh
        return mod

    def mem_alloc(self, size: int) -> Allocation:
        assert self.stack, "mem_alloc with no current context"
        alloc = Allocation(next(self._addresses), int(size), self.stack[-1], bytearray(int(size)))
        self.allocations.append(alloc)
        self.memory[alloc.address] = alloc
        return alloc

    def htod(self, device: Allocation, host: np.ndarray, stream: Any = None) -> None:
        data = np.ascontiguousarray(host).view(np.uint8).reshape(-1)
        self.memory[int(device)].memory[: data.size] = data.tobytes()

    def dtoh(self, host: np.ndarray, device: Allocation, stream: Any = None) -> None:
        raw = np.frombuffer(bytes(self.memory[int(device)].memory[: host.nbytes]), host.dtype)
        host[...] = raw.reshape(host.shape)

    def read(self, address: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.frombuffer(bytes(self.memory[address].memory[:n]), dtype).reshape(shape)

    def write(self, address: int, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
        self.memory[address].memory[: data.size] = data.tobytes()


# --- tensorrt -------------------------------------------------------------------------------------


def _onnx_io(path: str) -> tuple[list[tuple[str, list, str]], list[tuple[str, list, str]]]:
    import onnx

    model = onnx.load(path, load_external_data=False)

    def describe(values):
        out = []
        for v in values:
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
            out.append((v.name, dims, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)))
        return out

    return describe(model.graph.input), describe(model.graph.output)


@dataclass
class FakeTensorRT:
    """The tensorrt calls the build and the backend make; `builds` lists every plan built."""

    cuda: FakeCuda
    version: str = "10.3.0"
    dla_cores: int = 0
    builds: list[dict] = field(default_factory=list)
    timing_cache_accepts: bool = True

    def module(self) -> types.ModuleType:
        trt = types.ModuleType("tensorrt")
        fake = self
        trt.__version__ = self.version
        trt.DataType, trt.TensorIOMode = DataType, TensorIOMode
        trt.nptype = lambda t: _NP[DataType(t).name]
        trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
        flags = dict(GPU_FALLBACK=2)
        if not self.version.startswith("11."):
            flags["FP16"] = 0
        trt.BuilderFlag = types.SimpleNamespace(**flags)
        trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE=0)
        trt.DeviceType = types.SimpleNamespace(GPU=0, DLA=1)
        trt.ExecutionContextAllocationStrategy = types.SimpleNamespace(STATIC=0, USER_MANAGED=2)

        class Logger:
            WARNING = 2

            def __init__(self, level=None):
                self.level = level

        class Tensor:
            def __init__(self, name, shape, dtype):
                self.name, self.shape, self.dtype = name, tuple(shape), dtype

        class Layer:
            def __init__(self, name, op):
                self.name, self.op = name, op

        class Network:
            def __init__(self, flags):
                self.flags, self.inputs, self.outputs, self.layers, self.onnx = flags, [], [], [], None

            @property
            def num_inputs(self):
                return len(self.inputs)

            def get_input(self, i):
                return self.inputs[i]

            @property
            def num_layers(self):
                return len(self.layers)

            def get_layer(self, i):
                return self.layers[i]

        class OnnxParser:
            def __init__(self, network, logger):
                self.network = network
                self.num_errors = 0

            def parse_from_file(self, path):
                import onnx

                inputs, outputs = _onnx_io(path)
                self.network.onnx = path
                self.network.inputs = [Tensor(n, d, t) for n, d, t in inputs]
                self.network.outputs = [Tensor(n, d, t) for n, d, t in outputs]
                self.network.layers = [Layer(n.name, n.op_type) for n in onnx.load(path).graph.node]
                return True

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, low, opt, high):
                self.shapes[name] = [list(low), list(opt), list(high)]

        class TimingCache:
            def __init__(self, blob):
                self.blob = bytes(blob) or b"timings"

            def serialize(self):
                return self.blob

        class Config:
            def __init__(self):
                self.flags, self.profiles, self.default_device_type, self.DLA_core = set(), [], 0, -1
                self.workspace = None

            def set_memory_pool_limit(self, pool, size):
                self.workspace = size

            def set_flag(self, flag):
                self.flags.add(flag)

            def add_optimization_profile(self, profile):
                self.profiles.append(profile)

            def create_timing_cache(self, blob):
                return TimingCache(blob)

            def set_timing_cache(self, cache, ignore_mismatch):
                return fake.timing_cache_accepts or cache.blob == b"timings"

            def can_run_on_DLA(self, layer):
                return layer.op in ("Conv", "Relu", "MaxPool", "Add", "Mul")

        class Builder:
            def __init__(self, logger):
                self.num_DLA_cores = fake.dla_cores

            def create_network(self, flags):
                return Network(flags)

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                record = {"onnx": network.onnx, "profile": config.profiles[0].shapes,
                          "outputs": [[t.name, list(t.shape), t.dtype] for t in network.outputs],
                          "inputs": [[t.name, list(t.shape), t.dtype] for t in network.inputs],
                          "workspace": config.workspace, "dla_core": config.DLA_core}
                fake.builds.append(record)
                return json.dumps(record).encode()

        class Context:
            def __init__(self, engine, strategy):
                self.engine, self.strategy = engine, strategy
                self.addresses, self.input_shapes, self.device_memory = {}, {}, None

            def set_device_memory(self, address, size):
                self.device_memory = (address, size)

            def set_tensor_address(self, name, address):
                self.addresses[name] = address

            def set_input_shape(self, name, shape):
                self.input_shapes[name] = tuple(shape)
                return True

            def get_tensor_shape(self, name):
                batch = next(iter(self.input_shapes.values()))[0]
                dims = dict((n, d) for n, d, _ in self.engine.record["outputs"])[name]
                return (batch, *dims[1:])

            def execute_async_v3(self, stream):
                import onnxruntime as ort

                record = self.engine.record
                feed = {}
                for name, _, dtype in record["inputs"]:
                    shape = self.input_shapes[name]
                    low, high = record["profile"][name][0][0], record["profile"][name][2][0]
                    if not low <= shape[0] <= high:
                        return False            # what TensorRT does outside the profile
                    feed[name] = fake.cuda.read(self.addresses[name], shape, _NP[dtype])
                session = ort.InferenceSession(record["onnx"], providers=["CPUExecutionProvider"])
                for name, value in zip([o[0] for o in record["outputs"]], session.run(None, feed)):
                    fake.cuda.write(self.addresses[name], value)
                return True

        class Engine:
            device_memory_size_v2 = 4096

            def __init__(self, record):
                self.record = record
                self.io = [(n, TensorIOMode.INPUT, t) for n, _, t in record["inputs"]] + \
                          [(n, TensorIOMode.OUTPUT, t) for n, _, t in record["outputs"]]

            @property
            def num_io_tensors(self):
                return len(self.io)

            def get_tensor_name(self, i):
                return self.io[i][0]

            def get_tensor_mode(self, name):
                return next(m for n, m, _ in self.io if n == name)

            def get_tensor_dtype(self, name):
                return DataType[next(t for n, _, t in self.io if n == name)]

            def get_tensor_shape(self, name):
                dims = {n: d for n, d, _ in self.record["inputs"] + self.record["outputs"]}[name]
                return tuple(dims)

            def get_tensor_profile_shape(self, name, index):
                return [tuple(s) for s in self.record["profile"][name]]

            def create_execution_context(self, strategy=None):
                return Context(self, strategy)

        class Runtime:
            def __init__(self, logger):
                self.DLA_core = -1

            def deserialize_cuda_engine(self, blob):
                return Engine(json.loads(bytes(blob)))

        trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
        return trt


def install(monkeypatch, version: str = "10.3.0", dla_cores: int = 0) -> tuple[FakeTensorRT, FakeCuda]:
    """Put the fakes in sys.modules for one test; returns them for inspection."""
    cuda = FakeCuda()
    trt = FakeTensorRT(cuda, version, dla_cores)
    driver = cuda.module()
    monkeypatch.setitem(sys.modules, "tensorrt", trt.module())
    monkeypatch.setitem(sys.modules, "pycuda", types.SimpleNamespace(driver=driver))
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    return trt, cuda


def plan_record(plan: Path) -> dict:
    return json.loads(Path(plan).read_bytes())
