"""TensorRT's ONNX parser rules over the bundle's graphs (issue 13): the demo bundle conforms, and one
doctored graph per rule is refused by `build` (engine build and bundle build) and by `check`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from karmma_edge.bundle import Artifact, Bundle, InputEntry, Manifest, ProfileEntry, sha256_file, write_manifest


def karmma(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "karmma_edge.cli", *args], capture_output=True, text=True)


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
