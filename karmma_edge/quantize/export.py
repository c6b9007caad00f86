"""Export one ONNX graph per profile: only the present modalities' inputs; the learned tokens of the
absent modalities become constants; preprocessing stays inside the graph."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from karmma_edge.errors import KarmmaError
from karmma_edge.profiles import parse_profile
from karmma_edge.train.models import Student

log = logging.getLogger(__name__)
# The exporter warns once per torchvision op it cannot register; torchvision is not a dependency.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


class ProfileModel(nn.Module):
    """The student restricted to one profile, with positional inputs in canonical order."""

    def __init__(self, student: Student, profile: str):
        super().__init__()
        self.student = student
        self.modalities = parse_profile(profile, student.modalities)

    def forward(self, *inputs: torch.Tensor):
        return self.student(dict(zip(self.modalities, inputs)))


def example_inputs(student: Student, modalities: tuple[str, ...], batch: int = 2, seed: int = 0):
    spec = student.spec
    g = torch.Generator().manual_seed(seed)
    out = []
    for m in modalities:
        shape = (batch, *spec.input_shape(m))
        if spec.input_dtype(m) == "uint8":
            out.append(torch.randint(0, 256, shape, dtype=torch.uint8, generator=g))
        else:
            out.append(0.1 * torch.randn(shape, generator=g))
    return tuple(out)


def export_profile(student: Student, profile: str, out: Path, simplify: bool = True) -> Path:
    """Write `out` (ONNX, opset 18, dynamic batch axis), checked and simplified."""
    model = ProfileModel(student.eval(), profile).eval()
    inputs = example_inputs(student, model.modalities)
    batch = torch.export.Dim("B", min=1, max=64)
    dynamic = tuple({0: batch} for _ in inputs)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, inputs, dynamo=True, input_names=list(model.modalities),
            output_names=list(student.outputs),      # the label heads: verb and noun, or action
            dynamic_shapes={"inputs": dynamic}, optimize=True, verbose=False,
        )
    proto = program.model_proto
    if simplify:
        import onnxsim

        proto, ok = onnxsim.simplify(proto)
        if not ok:
            raise KarmmaError(f"onnxsim could not validate the simplified graph of profile {profile}")
    onnx.checker.check_model(proto, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, out)
    return out


def parity(student: Student, profile: str, onnx_path: Path, batch: int = 2, seed: int = 1) -> float:
    """Largest absolute difference between ONNX Runtime FP32 and torch logits on random inputs."""
    import onnxruntime as ort

    model = ProfileModel(student.eval(), profile).eval()
    inputs = example_inputs(student, model.modalities, batch=batch, seed=seed)
    with torch.no_grad():
        ref = [t.numpy() for t in model(*inputs)]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(list(student.outputs), {m: t.numpy() for m, t in zip(model.modalities, inputs)})
    return float(max(np.abs(a - b).max() for a, b in zip(ref, got)))
