"""Engine backends behind one interface; optional backends are imported only when asked for."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from karmma_edge.edge_runtime.backends.base import Engine
from karmma_edge.errors import KarmmaError

# name -> (module, class); modules import their heavy dependencies lazily.
BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("karmma_edge.edge_runtime.backends.onnxruntime", "OnnxRuntimeEngine"),
    "tensorrt": ("karmma_edge.edge_runtime.backends.tensorrt", "TensorRTEngine"),
}


def create_engine(backend: str, path: Path, **options) -> Engine:
    """An engine (not yet activated) for a model file on the named backend."""
    if backend not in BACKENDS:
        raise KarmmaError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[backend]
    return getattr(import_module(module), cls)(Path(path), **options)


__all__ = ["BACKENDS", "Engine", "create_engine"]
