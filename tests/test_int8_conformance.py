"""Every Q/DQ file is in the form TensorRT 10.x/11.x and ONNX Runtime both take (DESIGN section 6)."""

import numpy as np
import onnx
from onnx import numpy_helper

from karmma_edge.bundle import Bundle

# Operators TensorRT's ONNX parser supports (onnx-tensorrt docs/operators.md, TensorRT 10.x), limited to
# what a graph of this toolkit may contain. A new op in the graph must be checked and added here.
TENSORRT_ONNX_OPS = {
    "Add", "Cast", "Concat", "Constant", "Conv", "DequantizeLinear", "Div", "Expand", "Flatten", "Gather",
    "Gemm", "GlobalAveragePool", "Identity", "LayerNormalization", "Log", "MatMul", "Mul", "Pad",
    "QuantizeLinear", "ReduceMean", "Relu", "Reshape", "Shape", "Slice", "Softmax", "Split", "Sqrt",
    "Squeeze", "Sub", "Transpose", "Unsqueeze", "BatchNormalization", "Pow", "Where", "Sigmoid", "Tanh",
    "Erf", "ConstantOfShape", "Range", "Equal", "Not", "Neg", "Abs", "Clip", "MaxPool", "AveragePool",
    "LeakyRelu",
}


def _int8_models(bundle_root):
    bundle = Bundle(bundle_root)
    return [(p, onnx.load(bundle.artifact(p, "int8"))) for p in bundle.profiles]


def test_opset_and_operators(tiny_bundle):
    for profile, model in _int8_models(tiny_bundle):
        opset = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        assert opset["ai.onnx"] >= 13, profile
        ops = {n.op_type for n in model.graph.node}
        assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}, f"{profile}: custom-domain ops"
        assert ops <= TENSORRT_ONNX_OPS, f"{profile}: ops TensorRT's parser lacks: {ops - TENSORRT_ONNX_OPS}"


def test_zero_points_zero_and_int8(tiny_bundle):
    for profile, model in _int8_models(tiny_bundle):
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                continue
            assert len(node.input) == 3 and node.input[2] in inits, f"{profile}/{node.name}: no zero point"
            zp = inits[node.input[2]]
            assert zp.dtype == np.int8, f"{profile}/{node.name}: {zp.dtype} (TensorRT takes int8 Q/DQ only)"
            assert not zp.any(), f"{profile}/{node.name}: non-zero zero point"


def test_weights_per_channel_on_output_axis_activations_per_tensor(tiny_bundle):
    for profile, model in _int8_models(tiny_bundle):
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        producer = {o: n for n in model.graph.node for o in n.output}
        checked = 0
        for node in model.graph.node:
            if node.op_type not in ("Conv", "MatMul", "Gemm"):
                continue
            for pos, name in enumerate(node.input[:2]):
                dq = producer.get(name)
                if dq is None or dq.op_type != "DequantizeLinear":
                    continue
                scale = inits.get(dq.input[1])
                axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
                if dq.input[0] in inits:                      # a weight
                    w = inits[dq.input[0]]
                    if node.op_type == "Conv":
                        out_axis = 0
                    elif node.op_type == "Gemm":
                        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                        out_axis = 0 if trans_b else 1
                    else:
                        out_axis = w.ndim - 1
                    assert scale.size == w.shape[out_axis] and axis == out_axis, \
                        f"{profile}/{node.name}: weight scale {scale.shape} on axis {axis}, want {out_axis}"
                    checked += 1
                else:                                          # an activation
                    assert scale.size == 1, f"{profile}/{node.name}: per-channel activation scale"
        assert checked, f"{profile}: no quantized weight found"


def test_audio_front_end_stays_fp32(tiny_bundle):
    bundle = Bundle(tiny_bundle)
    model = onnx.load(bundle.artifact("audio", "int8"))
    log = next(n for n in model.graph.node if n.op_type == "Log")
    producer = {o: n for n in model.graph.node for o in n.output}
    seen, stack = set(), [log]
    while stack:                                       # everything upstream of the log-mel
        node = stack.pop()
        assert node.op_type not in ("QuantizeLinear", "DequantizeLinear"), f"Q/DQ in the front-end: {node.name}"
        for i in node.input:
            if i in producer and i not in seen:
                seen.add(i)
                stack.append(producer[i])


def test_only_convolutions_are_quantized(tiny_bundle):
    # The fusion's small matrices stay FP32 (quantize/int8.QUANTIZED_OPS), and a frame extractor's
    # convolutions follow each other with nothing in between that would leave the int8 layout.
    for profile, model in _int8_models(tiny_bundle):
        consumers: dict[str, list[str]] = {}
        for node in model.graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node.op_type)
        dq_readers = {op for n in model.graph.node if n.op_type == "DequantizeLinear"
                      for op in consumers.get(n.output[0], [])}
        assert dq_readers and dq_readers <= {"Conv", "LeakyRelu", "Relu"}, f"{profile}: {dq_readers}"
