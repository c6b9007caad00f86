"""The registry of buildable models: what it lists is what `create` builds, and `train --help` shows it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from karmma_edge.errors import KarmmaError
from karmma_edge.train.registry import list_models, model_config


def test_lists_each_kind_and_names_the_valid_ones_on_a_typo() -> None:
    students, extractors = list_models("student"), list_models("extractors")
    assert "student-s" in students and "teacher-m" in extractors
    assert sorted(students + extractors) == list_models()
    with pytest.raises(KarmmaError, match="student-xs"):
        model_config("student-xxs", "student")
    with pytest.raises(KarmmaError, match="registered: teacher-m"):
        model_config("student-s", "extractors")     # a student is no extractor


def test_every_listed_model_builds() -> None:
    torch = pytest.importorskip("torch", reason="building a network needs the `train` extra (torch)")
    from karmma_edge.train.zoo import create

    for name in list_models("student"):
        assert isinstance(create(name, outputs={"verb": 3, "noun": 4}), torch.nn.Module)
    for name in list_models("extractors"):
        assert isinstance(create(name, modality="audio"), torch.nn.Module)


def test_train_help_lists_the_registered_models() -> None:
    out = subprocess.run([sys.executable, "-m", "karmma_edge.cli", "train", "--help"], capture_output=True,
                         text=True, env={"COLUMNS": "200", "PATH": ""}, check=True).stdout
    for name in list_models():
        assert name in out
