"""TensorRT's ONNX parser rules over the bundle's graphs (issue 13): the demo bundle conforms, and one
doctored graph per rule is refused by `build` (engine build and bundle build) and by `check`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from karmma_edge.bundle import Artifact, Bundle, InputEntry, Manifest, ProfileEntry, sha256_file, write_manifest
from karmma_edge.quantize.trt_rules import RULES, ConformanceError, check_bundle, check_model
from conftest import karmma_cli


# --- the demo bundle ------------------------------------------------------------------------------


def _uint8_tensors_inside(model: onnx.ModelProto) -> list[str]:
    """Node outputs typed UINT8 that are not graph outputs, by ONNX's own shape inference."""
    graph = onnx.shape_inference.infer_shapes(model).graph
    uint8 = {v.name for v in graph.value_info if v.type.tensor_type.elem_type == TensorProto.UINT8}
    outputs = {o.name for o in graph.output}
    return [name for node in graph.node for name in node.output if name in uint8 and name not in outputs]


def test_no_graph_of_the_bundle_holds_a_uint8_tensor_inside(tiny_bundle):
    bundle = Bundle(tiny_bundle)
    assert len(bundle.profiles) == 7
    for profile in bundle.profiles:
        for kind in ("fp32", "int8"):
            model = onnx.load(bundle.artifact(profile, kind))
            assert _uint8_tensors_inside(model) == [], (profile, kind)
            # The raw uint8 sensor inputs feed a Cast (and at most a Shape) first.
            for inp in model.graph.input:
                if inp.type.tensor_type.elem_type == TensorProto.UINT8:
                    consumers = {n.op_type for n in model.graph.node if inp.name in n.input}
                    assert "Cast" in consumers and consumers <= {"Cast", "Shape"}, (profile, kind, consumers)


def test_the_bundle_passes_check(tiny_bundle):
    assert check_bundle(tiny_bundle) == []
    r = karmma_cli("check", "--bundle", str(tiny_bundle))
    assert r.returncode == 0, r.stderr
    assert "14 graphs" in r.stdout and "conform" in r.stdout


# --- one doctored graph per rule --------------------------------------------------------------------


def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "doctored", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _f32(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["B", *shape])


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _qdq_linear(w_axis: int = 1, w_scales: int = 2, act_scales: int = 1, zero: int = 0, bias_int32: bool = False):
    """x [B,4] -> Q/DQ -> MatMul with a Q/DQ weight [4,2] (-> + an INT32-dequantized bias) -> y."""
    act_scale = np.full(act_scales, 0.1, np.float32) if act_scales > 1 else np.float32(0.1)
    act_zero = np.full(act_scales, zero, np.int8) if act_scales > 1 else np.int8(zero)
    inits = [_init("s", act_scale), _init("z", act_zero),
             _init("w", np.ones((4, 2), np.int8)), _init("ws", np.full(w_scales, 0.01, np.float32)),
             _init("wz", np.zeros(w_scales, np.int8))]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_act", axis=1),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_act", axis=1),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="dq_w", axis=w_axis),
             helper.make_node("MatMul", ["xd", "wd"], ["mm" if bias_int32 else "y"], name="matmul")]
    if bias_int32:
        inits += [_init("b", np.ones(2, np.int32)), _init("bs", np.float32(0.001))]
        nodes += [helper.make_node("DequantizeLinear", ["b", "bs"], ["bd"], name="dq_bias"),
                  helper.make_node("Add", ["mm", "bd"], ["y"], name="add_bias")]
    return _model(nodes, [_f32("x", 4)], [_f32("y", 2)], inits)


CASES = {
    # rule -> (model, the node a finding must name, check with --dla-core)
    "opset": (lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [_f32("x", 4)],
                             [_f32("y", 4)], opset=21), "(model)", False),
    "unsupported-op": (lambda: _model([helper.make_node("Det", ["x"], ["y"], name="det")], [_f32("x", 3, 3)],
                                      [_f32("y")]), "det", False),
    "op-type": (lambda: _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul_int")],
                               [helper.make_tensor_value_info("x", TensorProto.INT32, ["B", 4])],
                               [helper.make_tensor_value_info("y", TensorProto.INT32, ["B", 2])],
                               [_init("w", np.ones((4, 2), np.int32))]), "matmul_int", False),
    "uint8-intermediate": (lambda: _model(
        [helper.make_node("Reshape", ["rgb", "shape"], ["flat"], name="reshape_u8"),
         helper.make_node("Cast", ["flat"], ["y"], name="cast", to=TensorProto.FLOAT)],
        [helper.make_tensor_value_info("rgb", TensorProto.UINT8, ["B", 2, 3])], [_f32("y", 6)],
        [_init("shape", np.array([-1, 6], np.int64))]), "reshape_u8", False),
    "constant-input": (lambda: _model(
        [helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="reduce", keepdims=1)],
        [_f32("x", 4), helper.make_tensor_value_info("axes", TensorProto.INT64, [1])], [_f32("y", 1)],
        opset=18), "reduce", False),
    "op-restriction": (lambda: _model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], dilations=[2, 2])],
        [_f32("x", 1, 8, 8)], [_f32("y", 1, 6, 6)]), "pool", False),
    "qdq-int8": (lambda: _qdq_linear(zero=3), "q_act", False),
    "dq-int32": (lambda: _qdq_linear(bias_int32=True), "dq_bias", False),
    "qdq-weight-axis": (lambda: _qdq_linear(w_axis=0, w_scales=4), "dq_w", False),
    "qdq-activation-per-tensor": (lambda: _qdq_linear(act_scales=4), "dq_act", False),
    "dla-static-shape": (lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                                        [_f32("x", "T")], [_f32("y", "T")]), "x", True),
}


def make_bundle(root: Path, model: onnx.ModelProto, profile: str = "audio") -> Path:
    (root / "profiles" / profile).mkdir(parents=True)
    path = root / "profiles" / profile / "model.int8.onnx"
    onnx.save(model, str(path))
    art = Artifact(path=f"profiles/{profile}/model.int8.onnx", sha256=sha256_file(path))
    write_manifest(root, Manifest(
        model_id="doctored", classes={"verb": ["a"], "noun": ["b"]}, input_spec={},
        inputs={"audio": InputEntry(shape=["B", 4], dtype="float32", preprocessing="none")}, outputs=["y"],
        profiles={profile: ProfileEntry(modalities=["audio"], artifacts={"int8": art, "fp32": art})},
    ))
    return root


def test_every_rule_has_a_doctored_graph():
    assert set(CASES) | {"dla-precision"} == set(RULES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_check_refuses_a_graph_that_breaks_the_rule(rule, tmp_path, monkeypatch, capsys):
    from karmma_edge.cli import main

    build, node, dla = CASES[rule]
    findings = check_model(build(), dla=dla)
    assert rule in {f.rule for f in findings} and node in {f.node for f in findings if f.rule == rule}
    bundle = make_bundle(tmp_path / "bundle", build())
    monkeypatch.setattr(sys, "argv", ["karmma-edge", "check", "--bundle", str(bundle),
                                      *(["--dla-core", "0"] if dla else [])])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"node {node!r}" in err and f"rule {rule}" in err and "profile audio" in err and "fix:" in err


@pytest.mark.parametrize("rule", sorted(CASES))
def test_engine_build_refuses_a_graph_that_breaks_the_rule(rule, tmp_path, monkeypatch):
    from karmma_edge.quantize.tensorrt_build import build_bundle_engines

    monkeypatch.setitem(sys.modules, "tensorrt", None)      # refused before TensorRT is even needed
    build, node, dla = CASES[rule]
    bundle = make_bundle(tmp_path / "bundle", build())
    with pytest.raises(ConformanceError) as err:
        build_bundle_engines(bundle, precision="int8", cache_dir=tmp_path / "cache", dla_core=0 if dla else None)
    assert f"node {node!r}" in str(err.value) and f"rule {rule}" in str(err.value)
    assert not (tmp_path / "cache").exists()


def test_dla_refuses_fp32_and_the_cli_exits_2_without_a_traceback(tmp_path):
    bundle = make_bundle(tmp_path / "ok", _model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                                                 [_f32("x", 4)], [_f32("y", 4)]))
    assert karmma_cli("check", "--bundle", str(bundle)).returncode == 0
    r = karmma_cli("check", "--bundle", str(bundle), "--precision", "fp32", "--dla-core", "0")
    assert r.returncode == 2 and "rule dla-precision" in r.stderr and "--precision int8" in r.stderr
    assert "Traceback" not in r.stderr


def _doctor_with_uint8(path: Path) -> None:
    """Route the audio input through a uint8 Cast round trip: a uint8 tensor inside the graph."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        node.input[:] = ["audio_back" if name == "audio" else name for name in node.input]
    model.graph.node.insert(0, helper.make_node("Cast", ["audio"], ["audio_u8"], name="to_uint8",
                                                to=TensorProto.UINT8))
    model.graph.node.insert(1, helper.make_node("Cast", ["audio_u8"], ["audio_back"], name="from_uint8",
                                                to=TensorProto.FLOAT))
    onnx.save(model, str(path))


def test_bundle_build_refuses_a_graph_that_breaks_a_rule_and_writes_nothing(tiny_run, tmp_path, monkeypatch):
    from karmma_edge.quantize import gate
    from karmma_edge.quantize.build import BuildOptions, build_bundle

    real_gate = gate.gate_profile

    def gate_then_doctor(fp32, int8, *args, **kw):
        result = real_gate(fp32, int8, *args, **kw)
        _doctor_with_uint8(int8)
        return result

    monkeypatch.setattr(gate, "gate_profile", gate_then_doctor)
    out = tmp_path / "bundle"
    with pytest.raises(ConformanceError) as err:
        build_bundle(BuildOptions(run=tiny_run, out=out, profiles="audio", calibration_size=8), progress=False)
    message = str(err.value)
    assert "profile audio int8" in message and "node 'to_uint8'" in message and "rule uint8-intermediate" in message
    assert not out.exists()
