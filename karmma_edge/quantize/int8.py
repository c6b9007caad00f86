"""Q/DQ INT8 with ONNX Runtime's static quantization (DESIGN section 6).

Symmetric (every zero point 0), per-channel weights on the output-channel axis, per-tensor int8
activations. Convolutions only: the audio front-end (STFT, mel, log) and the fusion transformer stay FP32.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections import deque
from pathlib import Path

import onnx

from karmma_edge.calibration.sets import CalibrationSet

log = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")
# The fusion's matrices are 64 wide over a dozen tokens: in INT8 their Q/DQ pairs cost more than the
# int8 product saves (`scripts/int8_speed.py --model student-m`, ONNX Runtime, 2 threads: 0.73 and 0.75
# of FP32 with them quantized, 0.71 and 0.69 without).
QUANTIZED_OPS = ["Conv"]


def frontend_nodes(model: onnx.ModelProto, stop_op: str = "Log") -> list[str]:
    """Nodes from the audio input up to and including the log of the mel spectrogram.

    Found by walking the graph rather than by name, so it holds for any exporter's naming.
    """
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    inputs = [i.name for i in model.graph.input if i.name == "audio"]
    seen: dict[str, onnx.NodeProto] = {}
    queue = deque(inputs)
    while queue:
        tensor = queue.popleft()
        for node in consumers.get(tensor, []):
            if node.name in seen:
                continue
            seen[node.name] = node
            if node.op_type != stop_op:
                queue.extend(node.output)
    return list(seen)


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a calibration set."""

    def __init__(self, calib: CalibrationSet, modalities: tuple[str, ...], batch: int):
        self._feeds = list(calib.feeds(modalities, batch))
        self._it = iter(self._feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):
        self._it = iter(self._feeds)


def preprocess(fp32: Path, out: Path) -> Path:
    """ONNX Runtime's quantization pre-processing: folds BatchNorm into Conv and infers every shape."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=False)
    return out


def quantize_int8(fp32: Path, out: Path, calib: CalibrationSet, modalities: tuple[str, ...],
                  method: str = "minmax", percentile: float = 99.999, exclude: tuple[str, ...] = (),
                  batch: int = 8, preprocessed: bool = False) -> dict:
    """Write the Q/DQ model to `out`; return what was done, for the manifest."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}")
    CalibrationDataReader.register(_Reader)
    with tempfile.TemporaryDirectory() as tmp:
        pre = fp32 if preprocessed else preprocess(fp32, Path(tmp) / "pre.onnx")
        model = onnx.load(pre)
        excluded = sorted(set(frontend_nodes(model)) | set(exclude))
        # ONNX Runtime's calibrators print their progress to stdout; the build shows its own.
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(pre), str(out), _Reader(calib, modalities, batch),
                quant_format=QuantFormat.QDQ, op_types_to_quantize=QUANTIZED_OPS, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                                  "percentile": CalibrationMethod.Percentile}[method],
                extra_options={
                    "ActivationSymmetric": True, "WeightSymmetric": True,
                    # TensorRT's parser rejects DequantizeLinear of int32 (a quantized bias): keep bias FP32.
                    "QuantizeBias": False,
                    "CalibPercentile": percentile,
                },
            )
    return {"method": method, "percentile": percentile if method == "percentile" else None,
            "excluded_nodes": excluded, "quantized_ops": QUANTIZED_OPS, "calibration_clips": len(calib)}
