"""Build any registered model by name (`train.registry` lists them)."""

from __future__ import annotations

from torch import nn

from karmma_edge.train.extractors import build_extractor
from karmma_edge.train.models import Student
from karmma_edge.train.registry import StudentConfig, model_config


def create(name: str, **kwargs) -> nn.Module:
    """The registered model `name`: a student takes `outputs` (label head -> classes) and optionally
    `modalities`; an extractor takes `modality`."""
    config = model_config(name)
    if isinstance(config, StudentConfig):
        return Student(config, **kwargs)
    return build_extractor(config, **kwargs)
