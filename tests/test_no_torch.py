"""The device installs the runtime without torch: importing it must not pull torch in."""

import subprocess
import sys

import pytest

MODULES = [
    "karmma_edge.edge_runtime",
    "karmma_edge.edge_runtime.backends.onnxruntime",
    "karmma_edge.edge_runtime.selector",
    "karmma_edge.edge_runtime.measure.bench",
    "karmma_edge.bundle",
    "karmma_edge.profiles",
    "karmma_edge.data",
    "karmma_edge.cli",
]


@pytest.mark.parametrize("module", MODULES)
def test_import_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"importing {module} imported torch"
