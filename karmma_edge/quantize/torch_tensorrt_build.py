"""`--backend torch-tensorrt`: compile the student directly with Torch-TensorRT (issue 5).

For x86 hosts with an NVIDIA GPU and torch-tensorrt installed; the Jetson path is the ONNX ->
TensorRT build in `tensorrt_build`. Torch-TensorRT's precision options changed across releases
(`enabled_precisions` with weak typing, then `use_explicit_typing` plus rule-based autocast), so
the FP16 options are chosen from the installed `compile` signature.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from karmma_edge.errors import BackendUnavailable, KarmmaError
from karmma_edge.targets import PRECISIONS

# No int8: torch-tensorrt would need its own calibration; INT8 goes through the Q/DQ ONNX graph.
TORCH_TENSORRT_PRECISIONS = tuple(p for p in PRECISIONS if p != "int8")


def require_torch_tensorrt() -> ModuleType:
    try:
        import torch_tensorrt
    except ImportError as e:  # also raised when its bundled TensorRT libraries cannot load
        raise BackendUnavailable(
            f"torch-tensorrt is not usable here ({e}); it needs an x86 host with an NVIDIA GPU: "
            "`pip install torch-tensorrt` matching your torch version. Elsewhere use "
            "`--backend onnxruntime`, or `--backend tensorrt` on the device."
        ) from None
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "torch-tensorrt is installed but torch sees no CUDA GPU (a CPU-only torch build, no driver "
            "or no device); it compiles only on an NVIDIA GPU. Use `--backend onnxruntime` here."
        )
    return torch_tensorrt


def _precision_options(torch_tensorrt: ModuleType, precision: str) -> dict[str, Any]:
    if precision == "fp32":
        return {}
    # torch_tensorrt.compile forwards these through **kwargs; dynamo.compile names them.
    params = inspect.signature(torch_tensorrt.dynamo.compile).parameters
    if "enable_autocast" in params:   # 2.10+: weak typing is deprecated; autocast inserts the casts
        low = "autocast_low_precision_type" if "autocast_low_precision_type" in params else "low_precision_type"
        return {"use_explicit_typing": True, "enable_autocast": True, low: torch.float16}
    options: dict[str, Any] = {"enabled_precisions": {torch.float16}}
    if "use_explicit_typing" in params:
        options["use_explicit_typing"] = False   # explicit typing would ignore enabled_precisions
    return options


def _dynamic_inputs(torch_tensorrt: ModuleType, example_inputs: tuple, max_batch: int) -> list:
    """Example tensors -> Input specs with a dynamic batch axis (1..max_batch), as the ONNX graphs have."""
    specs = []
    for t in example_inputs:
        rest = tuple(t.shape[1:])
        specs.append(torch_tensorrt.Input(min_shape=(1, *rest), opt_shape=tuple(t.shape),
                                          max_shape=(max(max_batch, t.shape[0]), *rest), dtype=t.dtype))
    return specs


def compile_student(model: torch.nn.Module, example_inputs: tuple, precision: str, out_path: Path,
                    max_batch: int = 8) -> Path:
    """Compile `model` (inputs as the ONNX graphs take them: raw uint8 frames, float32 audio) with
    Torch-TensorRT's dynamo frontend and save it as an ExportedProgram at `out_path`."""
    if precision == "int8":
        raise KarmmaError(
            "torch-tensorrt builds INT8 only from a ModelOpt-quantized model; for INT8 use "
            "`--backend tensorrt`, which builds from the bundle's calibrated Q/DQ ONNX"
        )
    if precision not in TORCH_TENSORRT_PRECISIONS:
        raise KarmmaError(f"unknown precision {precision!r}; torch-tensorrt builds: {', '.join(TORCH_TENSORRT_PRECISIONS)}")
    torch_tensorrt = require_torch_tensorrt()
    model = model.eval().cuda()
    inputs = tuple(t.cuda() for t in example_inputs)
    params = inspect.signature(torch_tensorrt.compile).parameters
    # Releases before 2.5 named the inputs `inputs`; later ones `arg_inputs`.
    inputs_kw = "arg_inputs" if "arg_inputs" in params else "inputs"
    with torch.no_grad():
        compiled = torch_tensorrt.compile(
            model, ir="dynamo", **{inputs_kw: _dynamic_inputs(torch_tensorrt, inputs, max_batch)},
            **_precision_options(torch_tensorrt, precision),
        )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_kw = "arg_inputs" if "arg_inputs" in inspect.signature(torch_tensorrt.save).parameters else "inputs"
    torch_tensorrt.save(compiled, str(out_path), output_format="exported_program", **{save_kw: list(inputs)})
    return out_path


def compile_run(run: Path, profiles: list[str] | None, precision: str, out: Path) -> list[str]:
    """Compile every profile of a trained run straight from torch (no ONNX) into `out/<profile>/`."""
    require_torch_tensorrt()                       # before loading anything
    from karmma_edge.atomic import atomic_directory
    from karmma_edge.profiles import all_profiles
    from karmma_edge.quantize.export import ProfileModel, example_inputs
    from karmma_edge.train.runs import load_student

    student, _ = load_student(run)
    lines = []
    with atomic_directory(out) as root:
        for profile in profiles or all_profiles(student.modalities):
            model = ProfileModel(student, profile)
            compile_student(model, example_inputs(student, model.modalities, batch=1), precision,
                            root / profile / "model.ep")
            lines.append(f"{profile}: {Path(out) / profile / 'model.ep'}")
    return lines
