"""ONNX Runtime engine: the CPU everywhere, CUDA or TensorRT execution providers where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from karmma_edge.edge_runtime.backends.base import Engine, TensorSpec
from karmma_edge.errors import BundleError

_ORT_DTYPES = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32, "tensor(int64)": np.int64,
               "tensor(float16)": np.float16, "tensor(int8)": np.int8}


# How an INT8 accuracy is measured: the Q/DQ graph run as written, with no graph optimization, so
# ONNX Runtime never fuses DequantizeLinear -> Conv -> QuantizeLinear into its int8 kernels. Those
# kernels differ by processor (without VNNI, x86 sums int8 products in saturating 16-bit pairs); the
# unfused graph computes each quantized layer in float on exactly the int8-rounded values, which is
# what TensorRT's int8 kernels compute with int32 accumulation. docs/int8.md says more.
QDQ_REFERENCE = "Q/DQ graph as written: ONNX Runtime CPU, graph optimizations off"


def session_options(threads: int | None = None, spin: bool = True, qdq_reference: bool = False):
    """ONNX Runtime session options for an engine; `qdq_reference` turns every graph optimization off."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if qdq_reference:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return opts


class OnnxRuntimeEngine(Engine):
    backend = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None, providers: list[str] | None = None,
                 spin: bool = True, qdq_reference: bool = False):
        """`spin=False` stops idle intra-op threads busy-waiting after each run. Back-to-back calls
        (bench) are ~0.4 ms faster with spinning on the tiny model here; a daemon holding one session
        per profile wants it off: the previous profile's spinning threads starve the next one, and a
        first call after a switch took ~30 ms instead of ~2 ms (measured on 2 cores).

        `qdq_reference=True` runs the graph as written on the CPU (see QDQ_REFERENCE): for measuring
        an INT8 graph's accuracy the same way on every host, not for speed."""
        super().__init__(path)
        self.threads = threads
        self.spin = spin
        self.providers = ["CPUExecutionProvider"] if qdq_reference else providers
        self.qdq_reference = qdq_reference
        self._session = None

    def _activate(self) -> None:
        import onnxruntime as ort

        opts = session_options(self.threads, self.spin, self.qdq_reference)
        available = ort.get_available_providers()
        providers = self.providers or [
            p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
            if p in available
        ]
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as e:  # ORT raises its own exception types for unreadable models
            raise BundleError(f"ONNX Runtime cannot load {self.path}: {e}") from None
        self.inputs = [
            TensorSpec(i.name, tuple(d if isinstance(d, int) else str(d) for d in i.shape),
                       np.dtype(_ORT_DTYPES[i.type]))
            for i in self._session.get_inputs()
        ]
        self.outputs = [o.name for o in self._session.get_outputs()]

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self._session.run(self.outputs, feed)))

    def _deactivate(self) -> None:
        self._session = None
