"""Does TensorRT's ONNX parser accept a graph? A static check, runnable anywhere (no torch, no TensorRT).

The rules are onnx-tensorrt's documented ones, for every TensorRT this project supports (10.3 on
JetPack 6.1+, 11.x on JetPack 7), so a graph that passes here parses on both:

- Operator table and restrictions: onnx-tensorrt `docs/operators.md` of the 10.x branch (read at
  release/10.1-GA, commit 96e7811; its header still says "TensorRT 10.0 supports operators in the
  inclusive range of opset 9 to opset 20"). It also says "UINT8 is only supported as network input or
  output tensor types", and the parser's `ModelImporter.cpp` refuses a node with a UINT8 output that
  is not a graph output.
- Opsets: 9 to 20 for 10.x (above); TensorRT 11.x's ONNX Opset Guide (docs.nvidia.com, "ONNX Opset
  Guide", TensorRT 11.x: opset 9 and above, maximum 25). The common range is 9 to 20.
- Quantization: `QuantizeLinear` "`y_zero_point` must be 0", `DequantizeLinear` takes INT8, FP8 or
  INT4 (so no INT32, i.e. no quantized bias) with "`x_zero_point` must be zero"; INT8 weights are
  quantized per output channel, activations per tensor (TensorRT developer guide, "Explicit
  Quantization").
- DLA (with --dla-core): "DLA does not support dynamic dimensions, so the profile's min, max, and opt
  values must be equal", "the maximum supported size for non-batch dimensions is 8192", and DLA runs
  only FP16 and INT8 (TensorRT docs, "DLA Supported Layers and Restrictions").

`check_model` returns findings; `check_bundle` runs it over every graph of a bundle; `build` and
`karmma-edge check` refuse a bundle with any finding (`ConformanceError`, exit status 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from karmma_edge.errors import BundleError, KarmmaError
from karmma_edge.targets import PRECISIONS

OPSET_RANGE = (9, 20)           # the opsets every supported TensorRT parses (10.x: 9-20, 11.x: 9-25)
DLA_MAX_DIM = 8192

_FLOAT = "FLOAT FLOAT16 BFLOAT16"
_NUMERIC = f"{_FLOAT} INT32 INT64"
_ANY = f"{_NUMERIC} BOOL"
# Supported operators -> the data types onnx-tensorrt lists for them (10.x operators.md, "Y" rows).
_TABLE = {
    _FLOAT: "Acos Acosh Asin Asinh Atan Atanh AveragePool BatchNormalization Ceil Celu Clip Conv ConvTranspose "
            "Cos Cosh CumSum Dropout Einsum Elu Erf Exp Floor Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool "
            "GroupNormalization GRU HardSigmoid HardSwish Hardmax ImageScaler InstanceNormalization IsInf "
            "LayerNormalization LeakyRelu Log LogSoftmax LRN LSTM LpNormalization LpPool MatMul MaxPool "
            "MeanVarianceNormalization ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike "
            "RandomUniform RandomUniformLike Reciprocal Resize RNN Round ScaledTanh Scan Selu Sigmoid Sin Sinh "
            "Softmax Softplus Softsign Sqrt Tan Tanh ThresholdedRelu Upsample",
    _NUMERIC: "Abs Add ArgMax ArgMin DepthToSpace Div Equal Greater GreaterOrEqual IsNaN Less LessOrEqual Max Min "
              "Mod Mul Neg Pad Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin "
              "ReduceProd ReduceSum ReduceSumSquare Relu Scatter ScatterElements ScatterND Shrink Sign SpaceToDepth "
              "Sub Sum TopK",
    _ANY: "Concat Constant ConstantOfShape Expand EyeLike Flatten Gather GatherElements GatherND Identity If Loop "
          "OneHot Reshape ReverseSequence Shape Size Slice Split Squeeze Tile Transpose Trilu Unsqueeze Where",
    "FLOAT FLOAT16": "DeformConv GridSample Mish NonMaxSuppression NonZero RoiAlign",
    "BOOL": "And Not Or Xor",
    f"{_ANY} UINT8": "Cast CastLike",
    "INT8 FLOAT8E4M3FN INT4": "DequantizeLinear",
    f"{_NUMERIC} INT8": "Gelu",
    f"{_NUMERIC} FLOAT8E4M3FN": "Mean",
}
SUPPORTED_OPS: dict[str, frozenset[str]] = {
    op: frozenset(types.split()) for types, ops in _TABLE.items() for op in ops.split()
}
# Inputs that onnx-tensorrt requires to be initializers (or Constant outputs): op -> input index.
_CONSTANT_INPUTS = {
    **{op: 1 for op in ("ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin "
                        "ReduceProd ReduceSum ReduceSumSquare Squeeze Unsqueeze CumSum").split()},
    "Slice": 3, "Pad": 3,
}
_SHAPE_OUTPUT_OPS = {"Shape", "Size"}     # their listed types are the input's; the output is INT64

RULES = {
    "opset": "the default-domain opset must be within TensorRT's parser range "
             f"{OPSET_RANGE[0]}-{OPSET_RANGE[1]} (10.x: 9-20, 11.x: 9-25)",
    "unsupported-op": "the operator is not in onnx-tensorrt's supported list (or is in a custom domain)",
    "op-type": "the operator does not take this data type in TensorRT",
    "uint8-intermediate": "UINT8 is only supported as a network input or output tensor type",
    "constant-input": "this input must be an initializer (a build-time constant) for TensorRT",
    "op-restriction": "an attribute or output onnx-tensorrt documents as unsupported for this operator",
    "qdq-int8": "Q/DQ must be symmetric INT8: zero point 0 of type INT8",
    "dq-int32": "TensorRT's parser has no INT32 DequantizeLinear (a quantized bias)",
    "qdq-weight-axis": "per-channel weight scales must lie on the output-channel axis of the consuming layer",
    "qdq-activation-per-tensor": "activations are quantized per tensor (one scale)",
    "dla-precision": "DLA runs only INT8 and FP16",
    "dla-static-shape": "DLA needs static shapes: every non-batch dimension fixed, at most 8192",
}
_FIXES = {
    "opset": "export with an opset in that range (the exporter's opset argument)",
    "unsupported-op": "change the model or the export so this operator is not emitted",
    "op-type": "cast to FLOAT before this node in the model or export",
    "uint8-intermediate": "cast raw uint8 inputs to float as the first operation of the graph "
                          "(train/frontends.py does; rebuild the bundle with this karmma-edge)",
    "constant-input": "export with constant folding (onnxsim) so the value is an initializer",
    "op-restriction": "change the export so the attribute has a supported value",
    "qdq-int8": "quantize with QuantType.QInt8 and ActivationSymmetric/WeightSymmetric (quantize/int8.py)",
    "dq-int32": "keep biases in FP32 (ONNX Runtime's QuantizeBias=False, quantize/int8.py)",
    "qdq-weight-axis": "set the per-channel axis of this operator's weights to its output channel "
                       "(QDQOpTypePerChannelSupportToAxis in quantize/int8.py)",
    "qdq-activation-per-tensor": "quantize activations per tensor (per_channel applies to weights only)",
    "dla-precision": "build with --precision int8 (or fp16 on TensorRT 10), or drop --dla-core",
    "dla-static-shape": "export with fixed non-batch dimensions (each at most 8192), or drop --dla-core",
}


@dataclass(frozen=True)
class Finding:
    """One rule one node breaks."""

    rule: str
    node: str
    op: str
    detail: str
    graph: str = ""         # the file, or "profile rgb+audio int8"

    @property
    def fix(self) -> str:
        return _FIXES[self.rule]

    def __str__(self) -> str:
        where = f"{self.graph}: " if self.graph else ""
        return (f"{where}node {self.node!r} ({self.op}) breaks rule {self.rule} ({RULES[self.rule]}): "
                f"{self.detail}; fix: {self.fix}")


class ConformanceError(BundleError):
    """A bundle graph breaks a rule of TensorRT's ONNX parser."""

    def __init__(self, findings: Sequence[Finding], source: str):
        self.findings = list(findings)
        shown = self.findings[:20]
        more = f"\n  ... and {len(self.findings) - len(shown)} more" if len(self.findings) > len(shown) else ""
        super().__init__(
            f"{source}: {len(self.findings)} problem(s) TensorRT's ONNX parser (10.3 / 11.x) would refuse:\n  "
            + "\n  ".join(map(str, shown)) + more
        )


def _onnx():
    try:
        import onnx
    except ImportError:
        raise KarmmaError("the TensorRT conformance check reads ONNX files: `pip install onnx`") from None
    return onnx


def _node_label(node, index: int) -> str:
    return node.name or f"#{index} {node.op_type} -> {', '.join(node.output)}"


def _types(model) -> dict[str, str]:
    """Tensor name -> ONNX element type name, after shape inference (which fills value_info)."""
    onnx = _onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:   # a graph inference cannot type still gets every check that needs no types
        inferred = model
    graph = inferred.graph
    types = {}
    for v in [*graph.input, *graph.output, *graph.value_info]:
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type:
            types[v.name] = onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
    for init in graph.initializer:
        types[init.name] = onnx.TensorProto.DataType.Name(init.data_type)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = onnx.TensorProto.DataType.Name(attr.t.data_type)
    return types


def _constants(graph) -> dict[str, object]:
    """Initializers and Constant outputs: name -> numpy array."""
    from onnx import numpy_helper

    values: dict[str, object] = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _attr(node, name: str, default=None):
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _opset_findings(model) -> list[Finding]:
    out = []
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not OPSET_RANGE[0] <= imp.version <= OPSET_RANGE[1]:
            out.append(Finding("opset", "(model)", "opset_import", f"the graph imports opset {imp.version}"))
    return out


def _weight_axis(consumer, input_index: int, rank: int) -> int | None:
    """The output-channel axis of a weight tensor feeding `consumer` at `input_index`, if it is a weight."""
    op = consumer.op_type
    if op == "Conv" and input_index == 1:
        return 0                                     # [O, I/g, k...]
    if op == "ConvTranspose" and input_index == 1:
        return 1                                     # [I, O/g, k...]
    if op == "MatMul" and input_index == 1:
        return rank - 1                              # [..., K, N]
    if op == "Gemm" and input_index == 1:
        return 0 if _attr(consumer, "transB", 0) else 1
    return None


def _qdq_findings(node, label: str, types: dict[str, str], constants: dict[str, object],
                  consumers: dict[str, list]) -> list[Finding]:
    op = node.op_type
    out = []
    data_type = types.get(node.input[0])
    if op == "DequantizeLinear" and data_type == "INT32":
        return [Finding("dq-int32", label, op, f"it dequantizes INT32 tensor {node.input[0]!r}")]
    zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if zp_name is None:
        if op == "QuantizeLinear":       # no zero point: ONNX's default output type is UINT8
            out.append(Finding("qdq-int8", label, op, "it has no zero point, so it quantizes to UINT8"))
    else:
        zp_type = types.get(zp_name)
        zp = constants.get(zp_name)
        if zp_type not in (None, "INT8"):
            out.append(Finding("qdq-int8", label, op, f"its zero point {zp_name!r} is {zp_type}, not INT8"))
        if zp is not None and bool((zp != 0).any()):
            out.append(Finding("qdq-int8", label, op, f"its zero point {zp_name!r} is not 0 (asymmetric)"))
    scale = constants.get(node.input[1])
    if scale is None or getattr(scale, "size", 1) <= 1:
        return out
    axis = _attr(node, "axis", 1)
    if op == "DequantizeLinear" and node.input[0] in constants:
        weight = constants[node.input[0]]
        axis = axis % weight.ndim
        for consumer in consumers.get(node.output[0], []):
            index = list(consumer.input).index(node.output[0])
            want = _weight_axis(consumer, index, weight.ndim)
            if want is not None and axis != want:
                out.append(Finding("qdq-weight-axis", label, op,
                                   f"weight {node.input[0]!r} is scaled per channel on axis {axis}; "
                                   f"{consumer.op_type} {consumer.name!r} needs axis {want}"))
    elif node.input[0] not in constants:
        out.append(Finding("qdq-activation-per-tensor", label, op,
                           f"activation {node.input[0]!r} has {scale.size} scales (axis {axis})"))
    return out


def _restriction_findings(node, label: str, constants: dict[str, object]) -> list[Finding]:
    op = node.op_type
    out = []
    index = _CONSTANT_INPUTS.get(op)
    if index is not None and len(node.input) > index and node.input[index] and node.input[index] not in constants:
        out.append(Finding("constant-input", label, op, f"input {index} {node.input[index]!r} is computed at run time"))
    if op in ("AveragePool", "MaxPool", "LpPool"):
        dilations = _attr(node, "dilations")
        if dilations and any(d != 1 for d in dilations):
            out.append(Finding("op-restriction", label, op, f"dilations {list(dilations)} (must be all ones)"))
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            out.append(Finding("op-restriction", label, op, "its Indices output is used"))
    elif op == "Constant" and any(a.name in ("sparse_value", "value_string", "value_strings") for a in node.attribute):
        out.append(Finding("op-restriction", label, op, "a sparse or string value"))
    elif op == "LayerNormalization" and any(node.output[1:]):
        out.append(Finding("op-restriction", label, op, "only its first output Y is supported"))
    elif op == "TopK" and _attr(node, "sorted", 1) != 1:
        out.append(Finding("op-restriction", label, op, "sorted=0 (must be 1)"))
    elif op == "Dropout" and len(node.input) > 2 and node.input[2]:
        mode = constants.get(node.input[2])
        if mode is None or bool(mode):
            out.append(Finding("op-restriction", label, op, "training_mode is not a constant False"))
    return out


def _dla_findings(model) -> list[Finding]:
    out = []
    initializers = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        dims = inp.type.tensor_type.shape.dim
        for axis, d in enumerate(dims[1:], 1):
            if not d.HasField("dim_value"):
                out.append(Finding("dla-static-shape", inp.name, "graph input", f"axis {axis} is dynamic ({d.dim_param!r})"))
            elif d.dim_value > DLA_MAX_DIM:
                out.append(Finding("dla-static-shape", inp.name, "graph input", f"axis {axis} is {d.dim_value} > {DLA_MAX_DIM}"))
    return out


def check_model(model, dla: bool = False, graph: str = "") -> list[Finding]:
    """Every rule `model` (an onnx.ModelProto or a path) breaks; empty when TensorRT would parse it."""
    onnx = _onnx()
    if isinstance(model, (str, Path)):
        model = onnx.load(str(model))
    g = model.graph
    types = _types(model)
    constants = _constants(g)
    consumers: dict[str, list] = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in g.output}
    findings = _opset_findings(model)
    for i, node in enumerate(g.node):
        label = _node_label(node, i)
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
            where = f" in domain {node.domain!r}" if node.domain not in ("", "ai.onnx") else ""
            findings.append(Finding("unsupported-op", label, op, f"{op}{where} is not supported"))
            continue
        for out_name in node.output:
            if out_name and types.get(out_name) == "UINT8" and out_name not in graph_outputs:
                findings.append(Finding("uint8-intermediate", label, op, f"its output {out_name!r} is UINT8"))
        checked = node.output[:1] if not node.input or op in ("Constant",) else node.input[:1]
        if op in ("Cast", "CastLike"):
            checked = [*node.input[:1], *node.output[:1]]
        for name in checked:
            t = types.get(name)
            # UINT8 has its own rule; Q/DQ types have theirs.
            if t and t != "UINT8" and t not in SUPPORTED_OPS[op] and not (op == "DequantizeLinear" and t == "INT32"):
                findings.append(Finding("op-type", label, op, f"tensor {name!r} is {t}"))
        if op in ("QuantizeLinear", "DequantizeLinear"):
            findings += _qdq_findings(node, label, types, constants, consumers)
        findings += _restriction_findings(node, label, constants)
    if dla:
        findings += _dla_findings(model)
    return [Finding(f.rule, f.node, f.op, f.detail, graph) for f in findings]


def dla_precision_findings(precision: str) -> list[Finding]:
    if precision in ("int8", "fp16"):
        return []
    return [Finding("dla-precision", "(build)", "--precision", f"--precision {precision} with --dla-core")]


def check_bundle(root: Path, profiles: Iterable[str] | None = None, kinds: Sequence[str] = ("fp32", "int8"),
                 dla: bool = False) -> list[Finding]:
    """Findings over the ONNX graphs of a bundle (every profile, FP32 and INT8 unless narrowed)."""
    from karmma_edge.bundle import Bundle

    bundle = Bundle(root)
    findings = []
    for profile in profiles or bundle.profiles:
        artifacts = bundle.manifest.profiles[profile].artifacts
        for kind in kinds:
            if kind in artifacts:
                findings += check_model(bundle.artifact(profile, kind), dla=dla,
                                        graph=f"profile {profile} {kind} ({artifacts[kind].path})")
    return findings


def require_conformant(findings: Sequence[Finding], source: str) -> None:
    if findings:
        raise ConformanceError(findings, source)


def check_bundle_for_build(root: Path, profiles: Sequence[str] | None = None, precision: str | None = None,
                           dla_core: int | None = None) -> int:
    """What `build` and `check` run: refuse (ConformanceError) a bundle TensorRT would not take.

    `precision` narrows the check to the graph that precision builds from; returns how many graphs passed.
    """
    from karmma_edge.bundle import Bundle

    if precision is not None and precision not in PRECISIONS:
        raise KarmmaError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    kinds = ("fp32", "int8") if precision is None else ("int8" if precision == "int8" else "fp32",)
    findings = dla_precision_findings(precision or "int8") if dla_core is not None else []
    findings += check_bundle(root, profiles, kinds, dla=dla_core is not None)
    require_conformant(findings, f"bundle {root}")
    bundle = Bundle(root)
    return sum(kind in bundle.manifest.profiles[p].artifacts for p in profiles or bundle.profiles for kind in kinds)
