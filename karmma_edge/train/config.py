"""Training configs read from YAML, validated up front (errors name the field)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from karmma_edge.errors import ConfigError


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path | None = Field(None, description="dataset root; `--data` overrides it")
    format: Literal["epic100", "ssv2"] = "epic100"
    model: str = "student-s"
    epochs: int = Field(12, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    modality_dropout: float = Field(0.5, ge=0, lt=1)
    seed: int = 0
    threads: int | None = Field(None, ge=1)


def load_config(path: Path, **overrides) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; see configs/ for examples")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, e.g. `epochs: 10`")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = TrainConfig.model_validate(raw)
    except ValidationError as e:
        fields = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{path}: {fields}") from None
    if overrides.get("data") is None and cfg.data is not None and not cfg.data.is_absolute():
        cfg.data = (path.parent / cfg.data).resolve()       # a path in the file is relative to the file
    return cfg
