"""The registry of buildable models, one entry per name a config's `model` may give (timm's
`list_models` is the model): students (`train student`) and trained extractors (`train extractors`).

Each entry is a frozen config beside the InputSpec it reads. No torch here: the CLI lists the names
in its help. `train.zoo.create(name)` builds one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from karmma_edge.errors import KarmmaError
from karmma_edge.inputs import InputSpec

STUDENT = "student"
EXTRACTORS = "extractors"
KINDS = (STUDENT, EXTRACTORS)


@dataclass(frozen=True)
class StudentConfig:
    frame_widths: tuple[int, ...] = (24, 48, 96)
    audio_widths: tuple[int, ...] = (24, 48, 96)
    fusion_dim: int = 64
    fusion_depth: int = 2
    fusion_heads: int = 4
    leaky_slope: float = 0.0          # > 0: LeakyReLU in the extractors (see models.conv_bn_relu)
    spec: InputSpec = field(default_factory=InputSpec)


@dataclass(frozen=True)
class ExtractorConfig:
    frame_widths: tuple[int, ...]
    audio_widths: tuple[int, ...]
    blocks: int                       # convolutions per stage after the strided one
    spec: InputSpec = field(default_factory=InputSpec)


ModelConfig = Union[StudentConfig, ExtractorConfig]
_KIND_OF = {StudentConfig: STUDENT, ExtractorConfig: EXTRACTORS}
_REGISTRY: dict[str, ModelConfig] = {}


def register_model(name: str, config: ModelConfig) -> ModelConfig:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    _REGISTRY[name] = config
    return config


def list_models(kind: str | None = None) -> list[str]:
    """Registered names, sorted; `kind` ("student" or "extractors") narrows them."""
    if kind is not None and kind not in KINDS:
        raise KarmmaError(f"unknown model kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return sorted(n for n, c in _REGISTRY.items() if kind is None or _KIND_OF[type(c)] == kind)


def model_config(name: str, kind: str | None = None) -> Any:
    """The config registered as `name`; with `kind`, only a model of that kind is accepted."""
    config = _REGISTRY.get(name)
    if config is None or (kind is not None and _KIND_OF[type(config)] != kind):
        what = "model" if kind in (None, STUDENT) else "extractor model"
        raise KarmmaError(f"unknown {what} {name!r}; registered: {', '.join(list_models(kind))}")
    return config


# ---------------------------------------------------------------------------------------- students
# The demo student: 64x64 frames, T=8, 1 s of 24 kHz audio. Widths and LeakyReLU chosen by
# scripts/int8_speed.py: ONNX Runtime INT8 ran at 0.58 of FP32 (2 threads); (24, 48, 96) with
# ReLU ran at 1.1 to 1.2, slower than FP32.
register_model("student-s", StudentConfig(frame_widths=(32, 64, 128), audio_widths=(32, 64, 128), leaky_slope=0.1))
# For the unit tests: same shape of graph, a fraction of the compute.
register_model("student-xs", StudentConfig(frame_widths=(8, 16, 32), audio_widths=(8, 16, 32), fusion_dim=32,
                                           fusion_depth=1, fusion_heads=2,
                                           spec=InputSpec(frames=4, height=32, width=32, audio_seconds=0.5)))
# KARMMA_S of the demo and of `reproduce --preset demo`: 4 frames of 48x48, a 256-point STFT. Sized by
# scripts/int8_speed.py and train/cost.py: under a quarter of teacher-m's FLOPs, with convolutions
# wide enough (24..96 channels, LeakyReLU) that ONNX Runtime's INT8 graph runs well ahead of FP32;
# at 16..64 channels INT8 ran at 0.89 of FP32 (per-node overhead dominates such small convolutions).
register_model("student-m", StudentConfig(frame_widths=(24, 48, 96), audio_widths=(16, 32, 64), fusion_dim=64,
                                          fusion_depth=1, fusion_heads=4, leaky_slope=0.1,
                                          spec=InputSpec(frames=4, height=48, width=48, n_fft=256)))

# -------------------------------------------------------------------------------------- extractors
# Each reads the clips of the student it teaches (same spec), at 4-6x the student's FLOPs.
register_model("teacher-xs", ExtractorConfig((16, 32, 64), (16, 32, 64), 2, model_config("student-xs").spec))
register_model("teacher-m", ExtractorConfig((32, 64, 128), (32, 64, 128), 3, model_config("student-m").spec))
register_model("teacher-s", ExtractorConfig((48, 96, 192), (48, 96, 192), 2, model_config("student-s").spec))
