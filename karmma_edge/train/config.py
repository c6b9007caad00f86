"""Training configs read from YAML, validated up front (errors name the field)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from karmma_edge.errors import ConfigError


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


class TrainConfig(Optim):
    """The student: `baseline` (no dropout), `baseline_dropout`, or KARMMA_S when a teacher is given."""

    model: str = "student-s"
    modality_dropout: float = Field(0.5, ge=0, lt=1)
    teacher: Path | None = Field(None, description="teacher run to distil from; `--teacher` overrides it")
    kd_alpha: float = Field(0.5, ge=0, le=1, description="weight of the distillation term")
    kd_temperature: float = Field(2.0, gt=0)


class ExtractorsConfig(Optim):
    """Pre-training of the teacher's per-modality extractors, each a unimodal verb/noun classifier."""

    model: str = "teacher-m"
    split: str = Field("pretrain", description="split to pre-train on: the synthetic data's larger pool")


class TeacherConfig(Optim):
    """The teacher's fusion block on frozen extractors' cached tokens."""

    extractors: Path | None = Field(None, description="a `train extractors` run; or give extractor_files")
    extractor_files: dict[Literal["rgb", "flow", "audio"], Path] | None = Field(
        None, description="per modality a .pt2 (torch.export), TorchScript or .onnx file: raw input -> [B,n,D]")
    spec_model: str = Field("student-s", description="registered model whose input spec the files expect")
    fusion_dim: int = Field(128, ge=8)
    fusion_depth: int = Field(2, ge=1)
    fusion_heads: int = Field(4, ge=1)
    modality_dropout: float = Field(0.5, ge=0, lt=1)


C = TypeVar("C", bound=BaseModel)


def validate(cls: type[C], raw: dict, where: str) -> C:
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        fields = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{where}: {fields}") from None


def read_yaml(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; see configs/ for examples")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, e.g. `epochs: 10`")
    return raw


def load_config(path: Path, cls: type[C] = TrainConfig, **overrides) -> C:
    path = Path(path)
    raw = read_yaml(path)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    cfg = validate(cls, raw, str(path))
    # A path written in the file is relative to the file; one from the command line is not.
    for name in ("data", "teacher", "extractors", "cache_dir"):
        value = getattr(cfg, name, None)
        if overrides.get(name) is None and value is not None and not Path(value).is_absolute():
            setattr(cfg, name, (path.parent / value).resolve())
    files = getattr(cfg, "extractor_files", None)
    if files:
        cfg.extractor_files = {m: p if p.is_absolute() else (path.parent / p).resolve() for m, p in files.items()}
    return cfg
