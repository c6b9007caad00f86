"""TensorRT backend and engine build.

Most tests run everywhere: the trtexec line, the engine-cache key and its refusal, the scratch
block's bookkeeping, and that a machine without TensorRT gets BackendUnavailable with install
steps. The build + inference tests need TensorRT, pycuda and a GPU and skip with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import fake_tensorrt
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from karmma_edge.bundle import Artifact, InputEntry, Manifest, ProfileEntry, sha256_file, write_manifest
from karmma_edge.edge_runtime.backends import create_engine
from karmma_edge.edge_runtime.backends import tensorrt as trt_backend
from karmma_edge.edge_runtime.backends.tensorrt import SharedScratch
from karmma_edge.edge_runtime.engine_cache import (
    EngineKey,
    check_engine_key,
    current_device_key,
    engine_path_for,
    gpu_identity,
    import_tensorrt,
    sidecar_path,
    sidecar_record,
)
from karmma_edge.errors import BackendUnavailable, BundleError, KarmmaError
from karmma_edge.quantize import tensorrt_build
from karmma_edge.quantize.tensorrt_build import (
    bundle_trtexec_commands,
    input_shapes_from_onnx,
    require_tensorrt,
    trtexec_command,
)

T, H, W, S = 4, 8, 8, 400
N_VERB, N_NOUN = 5, 7


def qdq_model(path: Path, seed: int = 0) -> Path:
    """A tiny Q/DQ graph with the bundle's interface: raw uint8 rgb and float32 audio in, verb and
    noun logits out, dynamic batch; symmetric INT8, per-channel weights, per-tensor activations."""
    rng = np.random.default_rng(seed)
    act_scale = np.array(2.0, np.float32)
    zero = np.array(0, np.int8)
    inits = [numpy_helper.from_array(act_scale, "act_scale"), numpy_helper.from_array(zero, "act_zp")]
    nodes = [
        helper.make_node("Cast", ["rgb"], ["rgb_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["rgb_f"], ["rgb_m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Abs", ["audio"], ["audio_abs"]),
        helper.make_node("ReduceMean", ["audio_abs"], ["audio_m"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["rgb_m", "audio_m"], ["feat"], axis=1),
        helper.make_node("QuantizeLinear", ["feat", "act_scale", "act_zp"], ["feat_q"]),
        helper.make_node("DequantizeLinear", ["feat_q", "act_scale", "act_zp"], ["feat_dq"]),
    ]
    for head, classes in (("verb", N_VERB), ("noun", N_NOUN)):
        w = rng.integers(-127, 128, size=(4, classes)).astype(np.int8)
        scale = rng.uniform(0.001, 0.01, size=classes).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"{head}_w"), numpy_helper.from_array(scale, f"{head}_ws"),
                  numpy_helper.from_array(np.zeros(classes, np.int8), f"{head}_wz")]
        nodes += [
            helper.make_node("DequantizeLinear", [f"{head}_w", f"{head}_ws", f"{head}_wz"], [f"{head}_wf"], axis=1),
            helper.make_node("MatMul", ["feat_dq", f"{head}_wf"], [head]),
        ]
    graph = helper.make_graph(
        nodes, "tiny_qdq",
        [helper.make_tensor_value_info("rgb", TensorProto.UINT8, ["B", T, H, W, 3]),
         helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["B", S])],
        [helper.make_tensor_value_info("verb", TensorProto.FLOAT, ["B", N_VERB]),
         helper.make_tensor_value_info("noun", TensorProto.FLOAT, ["B", N_NOUN])],
        inits,
    )
    # IR 8 (not the onnx package's newest) so older ONNX Runtime and TensorRT parsers read it
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def feed(batch: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"rgb": rng.integers(0, 256, size=(batch, T, H, W, 3), dtype=np.uint8),
            "audio": rng.uniform(-1, 1, size=(batch, S)).astype(np.float32)}


def ort_outputs(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with create_engine("onnxruntime", path, threads=1) as engine:
        return engine.infer(inputs)


def make_key(**changes) -> EngineKey:
    base = dict(profile="rgb+audio", precision="int8", onnx_sha256="ab" * 32, tensorrt_version="10.3.0",
                gpu_name="Orin", compute_capability="8.7", dla_core=None)
    return EngineKey(**{**base, **changes})


def write_plan(tmp_path: Path, key: EngineKey) -> Path:
    plan = engine_path_for(tmp_path, key)
    plan.write_bytes(b"not really a plan")
    sidecar_path(plan).write_text(json.dumps(sidecar_record(plan, key)))
    return plan


@pytest.fixture
def no_tensorrt(monkeypatch):
    """Make `import tensorrt` / `import pycuda` fail as on a machine without them, whatever is installed."""
    for name in ("tensorrt", "pycuda", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, None)


# --- runs everywhere ------------------------------------------------------------------------------


def test_fixture_runs_on_onnxruntime(tmp_path):
    out = ort_outputs(qdq_model(tmp_path / "m.onnx"), feed(2))
    assert out["verb"].shape == (2, N_VERB) and out["noun"].shape == (2, N_NOUN)


def test_trtexec_command_int8_reads_shapes_from_onnx(tmp_path):
    model = qdq_model(tmp_path / "m.onnx")
    assert input_shapes_from_onnx(model) == {"rgb": ("B", T, H, W, 3), "audio": ("B", S)}
    line = trtexec_command(model, tmp_path / "e.plan", "int8", timing_cache=tmp_path / "t.cache", max_batch=4)
    args = line.split()
    assert args[0] == "trtexec"
    assert f"--onnx={model}" in args and f"--saveEngine={tmp_path / 'e.plan'}" in args
    assert "--stronglyTyped" in args and "--fp16" not in args
    assert f"--minShapes=rgb:1x{T}x{H}x{W}x3,audio:1x{S}" in args
    assert f"--optShapes=rgb:1x{T}x{H}x{W}x3,audio:1x{S}" in args
    assert f"--maxShapes=rgb:4x{T}x{H}x{W}x3,audio:4x{S}" in args
    assert f"--timingCacheFile={tmp_path / 't.cache'}" in args
    assert not any(a.startswith("--useDLACore") for a in args)


def test_trtexec_command_dla_fp16_and_tensorrt_11(tmp_path):
    model = qdq_model(tmp_path / "m.onnx")
    args = trtexec_command(model, tmp_path / "e.plan", "fp16", dla_core=1, workspace_mb=512).split()
    assert "--fp16" in args and "--stronglyTyped" not in args
    assert "--useDLACore=1" in args and "--allowGPUFallback" in args
    assert "--memPoolSize=workspace:512M" in args
    # TensorRT 11 is always strongly typed and has no precision flags.
    assert "--stronglyTyped" not in trtexec_command(model, tmp_path / "e.plan", "int8", major=11).split()
    with pytest.raises(KarmmaError, match="no --fp16"):
        trtexec_command(model, tmp_path / "e.plan", "fp16", major=11)


def test_trtexec_command_refuses_a_dynamic_axis_besides_the_batch(tmp_path):
    with pytest.raises(KarmmaError, match="only its first"):
        trtexec_command(tmp_path / "m.onnx", tmp_path / "e.plan", "int8", shapes={"rgb": ("B", "T", H, W, 3)})


def test_engine_key_json_round_trip_and_cache_path(tmp_path):
    key = make_key(dla_core=0)
    assert EngineKey.from_json(key.to_json()) == key
    assert EngineKey.from_json(make_key().to_json()).dla_core is None
    path = engine_path_for(tmp_path, key)
    assert path == engine_path_for(tmp_path, make_key(dla_core=0))
    assert path.name.startswith("rgb+audio.int8.") and path.suffix == ".plan"
    for change in ({"tensorrt_version": "10.4.0"}, {"gpu_name": "RTX 4090"}, {"compute_capability": "8.9"},
                   {"dla_core": 1}, {"onnx_sha256": "cd" * 32}, {"precision": "fp16"}, {"max_batch": 16},
                   {"min_batch": 2}, {"opt_batch": 4}, {"workspace_mb": 2048}):
        assert engine_path_for(tmp_path, make_key(**{"dla_core": 0, **change})) != path


def test_check_engine_key_accepts_a_match_and_refuses_a_mismatch(tmp_path):
    key = make_key()
    plan = write_plan(tmp_path, key)
    assert check_engine_key(plan, key) == key
    with pytest.raises(BundleError) as err:
        check_engine_key(plan, make_key(tensorrt_version="10.7.0"))
    message = str(err.value)
    assert "tensorrt_version is '10.3.0', this device needs '10.7.0'" in message
    assert "karmma-edge build" in message and "--backend tensorrt" in message and "rgb+audio" in message


def test_check_engine_key_refuses_a_changed_plan_or_a_missing_key_file(tmp_path):
    key = make_key()
    plan = write_plan(tmp_path, key)
    plan.write_bytes(b"truncated")
    with pytest.raises(BundleError, match="SHA-256"):
        check_engine_key(plan, key)
    sidecar_path(plan).unlink()
    with pytest.raises(BundleError, match="no key file.*--backend tensorrt"):
        check_engine_key(plan, key)


def test_require_tensorrt_says_how_to_install(no_tensorrt):
    with pytest.raises(BackendUnavailable) as err:
        require_tensorrt()
    message = str(err.value)
    assert "python3-libnvinfer" in message and "pip install pycuda" in message
    assert "bundle" in message and "device" in message


def test_tensorrt_engine_activation_without_tensorrt_is_backend_unavailable(tmp_path, no_tensorrt):
    engine = create_engine("tensorrt", tmp_path / "missing.plan")   # constructing never imports TensorRT
    with pytest.raises(BackendUnavailable, match="python3-libnvinfer"):
        engine.activate()
    assert not engine.is_active


def test_gpu_identity_without_pycuda_or_nvml(monkeypatch):
    pynvml = pytest.importorskip("pynvml")
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)

    def no_nvml():   # what nvmlInit does here and on every Jetson without NVML
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_nvml)
    with pytest.raises(BackendUnavailable, match="NVML is unavailable"):
        gpu_identity()


class _Context:      # a TensorRT execution context's scratch pointer
    def __init__(self):
        self.memory = None

    def set_device_memory(self, address, size):
        self.memory = (address, size)


def test_shared_scratch_is_one_block_sized_to_the_largest_engine(monkeypatch):
    _, cuda = fake_tensorrt.install(monkeypatch)
    scratch, small, large = SharedScratch(), _Context(), _Context()
    scratch.attach(small, 100)
    first = cuda.allocations[0]
    assert scratch.nbytes == 100 and small.memory == (first.address, 100)
    scratch.attach(large, 300)   # grows: both contexts now share the larger block
    second = cuda.allocations[1]
    assert scratch.nbytes == 300 and len(cuda.allocations) == 2 and first.freed_alive
    assert small.memory == large.memory == (second.address, 300)
    scratch.attach(_Context(), 50)   # fits: no new block
    assert len(cuda.allocations) == 2
    for context in list(scratch._contexts):
        scratch.detach(context)
    assert scratch.nbytes == 0 and second.freed_alive and not cuda.primary.alive


def make_bundle(root: Path) -> Path:
    (root / "profiles" / "rgb+audio").mkdir(parents=True)
    model = qdq_model(root / "profiles" / "rgb+audio" / "model.int8.onnx")
    art = Artifact(path="profiles/rgb+audio/model.int8.onnx", sha256=sha256_file(model))
    write_manifest(root, Manifest(
        model_id="tiny", classes={"verb": list("abcde"), "noun": list("abcdefg")}, input_spec={},
        inputs={"rgb": InputEntry(shape=["B", T, H, W, 3], dtype="uint8", preprocessing="normalise"),
                "flow": InputEntry(shape=["B", T, H, W, 2], dtype="uint8", preprocessing="normalise"),
                "audio": InputEntry(shape=["B", S], dtype="float32", preprocessing="log-mel")},
        outputs=["verb", "noun"],
        profiles={"rgb+audio": ProfileEntry(modalities=["rgb", "audio"], artifacts={"int8": art, "fp32": art})},
    ))
    return root


def test_bundle_trtexec_commands_need_no_tensorrt(tmp_path, no_tensorrt):
    bundle = make_bundle(tmp_path / "bundle")
    commands = bundle_trtexec_commands(bundle, precision="int8", out_dir=tmp_path / "engines", max_batch=2)
    args = commands["rgb+audio"].split()
    assert f"--saveEngine={tmp_path / 'engines' / 'rgb+audio.int8.plan'}" in args
    assert f"--maxShapes=rgb:2x{T}x{H}x{W}x3,audio:2x{S}" in args   # flow is not in this profile


def test_build_bundle_engines_without_tensorrt_says_the_bundle_builds_anywhere(tmp_path, no_tensorrt):
    bundle = make_bundle(tmp_path / "bundle")
    with pytest.raises(BackendUnavailable, match="bundle itself"):
        tensorrt_build.build_bundle_engines(bundle, cache_dir=tmp_path / "cache")


# --- needs TensorRT, pycuda and a GPU -------------------------------------------------------------


def _missing_gpu_stack() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed here: it ships with JetPack / NVIDIA's index"
    if importlib.util.find_spec("pycuda") is None:
        return "pycuda is not installed here: the TensorRT backend moves buffers with it"
    try:
        import pycuda.driver as cuda

        cuda.init()
        count = cuda.Device.count()
    except Exception as e:  # pycuda raises its own error types when libcuda or a GPU is missing
        return f"CUDA is unusable here: {e}"
    return None if count else "no CUDA GPU here"


_MISSING = _missing_gpu_stack()
needs_gpu_stack = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def _build(tmp_path: Path, name: str, seed: int, max_batch: int = 4):
    model = qdq_model(tmp_path / f"{name}.onnx", seed=seed)
    key = current_device_key(name, "int8", sha256_file(model), batches=(1, 1, max_batch))
    plan = engine_path_for(tmp_path / "cache", key)
    tensorrt_build.build_engine(model, plan, key, timing_cache=tmp_path / "cache" / "timing.cache")
    return model, key, plan


def _assert_close(got: dict, want: dict) -> None:
    for name in ("verb", "noun"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-2, atol=1e-2 * np.abs(want[name]).max())


@pytest.mark.tensorrt
@needs_gpu_stack
def test_build_and_infer_matches_onnxruntime(tmp_path):
    model, key, plan = _build(tmp_path, "rgb+audio", seed=0)
    assert check_engine_key(plan, key) == key and (tmp_path / "cache" / "timing.cache").is_file()
    with create_engine("tensorrt", plan, expected_key=key) as engine:
        assert [s.name for s in engine.inputs] == ["rgb", "audio"] and engine.outputs == ["verb", "noun"]
        for batch in (1, 3):
            inputs = feed(batch, seed=batch)
            _assert_close(engine.infer(inputs), ort_outputs(model, inputs))
        with pytest.raises(KarmmaError, match="batches 1..4"):
            engine.infer(feed(5))
    with pytest.raises(BundleError, match="tensorrt_version"):
        create_engine("tensorrt", plan, expected_key=make_key(profile="rgb+audio")).activate()


@pytest.mark.tensorrt
@needs_gpu_stack
def test_two_engines_share_one_scratch_block(tmp_path):
    scratch = SharedScratch()
    built = [_build(tmp_path, name, seed) for name, seed in (("rgb+audio", 0), ("audio", 1))]
    engines = [create_engine("tensorrt", plan, expected_key=key, scratch=scratch) for _, key, plan in built]
    for engine in engines:
        engine.activate()
    sizes = [trt_backend.engine_device_memory_size(e._engine) for e in engines]
    assert scratch.nbytes == max(*sizes, 1)
    inputs = feed(2)
    for _ in range(2):   # alternate, as a profile switch does
        for (model, _, _), engine in zip(built, engines):
            _assert_close(engine.infer(inputs), ort_outputs(model, inputs))
    for engine in engines:
        engine.deactivate()
    assert scratch.nbytes == 0


# --- torch-tensorrt (x86 hosts with a GPU) --------------------------------------------------------


def test_compile_student_without_torch_tensorrt(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from karmma_edge.quantize.torch_tensorrt_build import compile_student

    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)
    model, example = torch.nn.Linear(4, 2), (torch.zeros(1, 4),)
    with pytest.raises(KarmmaError, match="Q/DQ"):
        compile_student(model, example, "int8", tmp_path / "m.ep")
    with pytest.raises(BackendUnavailable, match="pip install torch-tensorrt"):
        compile_student(model, example, "fp32", tmp_path / "m.ep")


def _missing_torch_tensorrt() -> str | None:
    if importlib.util.find_spec("torch_tensorrt") is None:
        return "torch-tensorrt is not installed here: it needs an x86 host with an NVIDIA GPU"
    import torch

    return None if torch.cuda.is_available() else "torch sees no CUDA GPU here"


_MISSING_TT = _missing_torch_tensorrt()


@pytest.mark.tensorrt
@pytest.mark.skipif(_MISSING_TT is not None, reason=_MISSING_TT or "")
def test_compile_student_matches_torch(tmp_path):
    import torch

    from karmma_edge.quantize.torch_tensorrt_build import compile_student

    class Student(torch.nn.Module):   # raw uint8 frames in, as the exported graphs take them
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(3, N_VERB)

        def forward(self, rgb):
            return self.head(rgb.float().mean(dim=(1, 2, 3)) / 255.0)

    model = Student().eval()
    rgb = torch.randint(0, 256, (2, T, H, W, 3), dtype=torch.uint8)
    path = compile_student(model, (rgb,), "fp32", tmp_path / "student.ep", max_batch=4)
    loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        torch.testing.assert_close(loaded(rgb.cuda()).cpu(), model(rgb), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("version", ["8.6.2.3", "10.2.0"])
def test_import_tensorrt_refuses_versions_below_10_3(version, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__=version))
    with pytest.raises(BackendUnavailable, match=r"10\.3 or newer.*JetPack 6\.1"):
        import_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.3.0.26"))
    assert import_tensorrt().__version__ == "10.3.0.26"
