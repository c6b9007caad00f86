"""Training configs read from YAML, validated up front (errors name the field)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from karmma_edge.inputs import InputSpec
from karmma_edge.file_formats import load_yaml_model


class Optim(BaseModel):
    """What every training stage shares: data, schedule, seed, threads."""

    model_config = ConfigDict(extra="forbid")

    data: Path | None = Field(None, description="dataset root; `--data` overrides it")
    format: Literal["epic100", "ssv2"] = "epic100"
    epochs: int = Field(12, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch threads per process; default: cores/processes - 1")
    cache_dir: Path | None = Field(None, description="decoded clips and tokens; default: RUN_DIR/cache")
    decoded_cache_gb: float = Field(2.0, ge=0, description="a training split at most this large decoded is "
                                    "decoded once into memory-mapped files in cache_dir; a larger one is "
                                    "decoded on the fly every epoch by `workers` processes")
    workers: int = Field(2, ge=0, description="DataLoader worker processes decoding clips on the fly (per process)")
    checkpoint_steps: int = Field(0, ge=0, description="also checkpoint every this many steps within an "
                                  "epoch (0: after each epoch only); a killed run resumes mid-epoch")


class TrainConfig(Optim):
    """The student: `baseline` (no dropout), `baseline_dropout`, or KARMMA_S when a teacher is given."""

    model: str = "student-s"
    modality_dropout: float = Field(0.5, ge=0, lt=1)
    teacher: Path | None = Field(None, description="teacher run to distil from; `--teacher` overrides it")
    kd_alpha: float = Field(0.5, ge=0, le=1, description="weight of the distillation term")
    kd_temperature: float = Field(2.0, gt=0)
    init_extractors: Path | None = Field(None, description="a `train extractors` run with this student's "
                                         "`model`: its pre-trained encoders initialise the student's, which "
                                         "then train on with the rest (reproduce's control and KARMMA_S)")


class ExtractorsConfig(Optim):
    """Pre-training of the teacher's per-modality extractors, each a unimodal verb/noun classifier."""

    model: str = Field("teacher-m", description="a registered extractor model, or a student model to "
                       "pre-train that student's own encoders (see TrainConfig.init_extractors)")
    split: str = Field("pretrain", description="split to pre-train on: the synthetic data's larger pool")


class ExtractorFile(BaseModel):
    """A user's extractor and the input it reads; an unset field takes the `spec_model`'s value."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(..., description="a .pt2 (torch.export), TorchScript or .onnx file: raw input -> [B,n,D]")
    frames: int | None = Field(None, ge=1, description="T frames per clip (rgb and flow)")
    size: int | None = Field(None, ge=8, description="frame side in pixels (frames are resized whole, square)")
    sampling: Literal["segments", "dense"] | None = Field(
        None, description="segments: centres of T equal bins (TSN, TSM); dense: T frames frame_stride apart "
                          "around the segment's centre (SlowFast, Omnivore)")
    frame_stride: int | None = Field(None, ge=1, description="frames between samples when sampling is dense")
    flow_stack: int | None = Field(None, ge=1, description="(u, v) pairs per sampled frame, as channels "
                                                           "u0, v0, u1, v1, ...: 5 for TSN/TSM flow")
    sample_rate: int | None = Field(None, ge=1000, description="audio rate in Hz")
    audio_seconds: float | None = Field(None, gt=0, description="audio window, centred on the segment")

    def spec(self, base: InputSpec) -> InputSpec:
        fields = self.model_dump(exclude={"path", "size"}, exclude_none=True)
        if self.size is not None:
            fields.update(height=self.size, width=self.size)
        return replace(base, **fields)


class TeacherConfig(Optim):
    """The teacher's fusion block on frozen extractors' cached tokens."""

    extractors: Path | None = Field(None, description="a `train extractors` run; or give extractor_files")
    extractor_files: dict[Literal["rgb", "flow", "audio"], Path | ExtractorFile] | None = Field(
        None, description="per modality a .pt2 (torch.export), TorchScript or .onnx file: raw input -> [B,n,D], "
                          "or {path: FILE, frames: 8, size: 224, flow_stack: 5, ...}: the input it reads")
    spec_model: str = Field("student-s", description="registered model whose input spec the files expect "
                                                     "where an extractor_files entry declares none")
    fusion_dim: int = Field(128, ge=8)
    fusion_depth: int = Field(2, ge=1)
    fusion_heads: int = Field(4, ge=1)
    modality_dropout: float = Field(0.5, ge=0, lt=1)


C = TypeVar("C", bound=BaseModel)


def load_config(path: Path, cls: type[C] = TrainConfig, **overrides) -> C:
    path = Path(path)
    cfg = load_yaml_model(cls, path, overrides)
    # A path written in the file is relative to the file; one from the command line is not.
    for name in ("data", "teacher", "extractors", "cache_dir", "init_extractors"):
        value = getattr(cfg, name, None)
        if overrides.get(name) is None and value is not None and not Path(value).is_absolute():
            setattr(cfg, name, (path.parent / value).resolve())
    files = getattr(cfg, "extractor_files", None)
    if files:
        def absolute(p: Path) -> Path:
            return p if p.is_absolute() else (path.parent / p).resolve()

        cfg.extractor_files = {m: f.model_copy(update={"path": absolute(f.path)}) if isinstance(f, ExtractorFile)
                               else absolute(f) for m, f in files.items()}
    return cfg
