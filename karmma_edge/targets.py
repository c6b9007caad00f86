"""What a model can be built for: precisions and build backends. No torch here (the runtime reads it)."""

from __future__ import annotations

# Widest first: bench tables list precisions in this order.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
# `build --backend`; the runtime's engines are the first two (edge_runtime.backends), a torch-tensorrt
# build is a TorchScript module that torch runs.
BACKENDS: tuple[str, ...] = ("onnxruntime", "tensorrt", "torch-tensorrt")
