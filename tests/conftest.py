"""Shared fixtures. Add fixtures here; do not remove others'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from karmma_edge.presets import CONFIG_DIR


def karmma_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    """`karmma-edge ARGS` as a user runs it: a subprocess, its output captured as text. Wide enough
    (COLUMNS) that rich's help tables never wrap a choice mid-word."""
    env = {**os.environ, "COLUMNS": "400", **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "karmma_edge.cli", *args], capture_output=True, text=True,
                          env=env, **kw)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic dataset (seed 0), synthesized once per test session; returns its root."""
    from karmma_edge.data import synthesize

    return synthesize(tmp_path_factory.mktemp("data") / "tiny", preset="tiny", seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A student-xs run trained for two epochs on the tiny dataset (needs torch)."""
    pytest.importorskip("torch", reason="training needs the `train` extra (torch)")
    from karmma_edge.train.config import load_config
    from karmma_edge.train.loop import train_student

    out = tmp_path_factory.mktemp("runs") / "student"
    cfg = load_config(CONFIG_DIR / "student-tiny.yaml", data=tiny_dataset)
    train_student(cfg, out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A bundle with every profile of the tiny run.

    $KARMMA_TEST_BUNDLE names a prebuilt one: the Python 3.10 runtime job has no torch to build it.
    """
    import os

    prebuilt = os.environ.get("KARMMA_TEST_BUNDLE")
    if prebuilt:
        return Path(prebuilt)
    run = request.getfixturevalue("tiny_run")
    from karmma_edge.quantize.build import BuildOptions, build_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    build_bundle(BuildOptions(run=run, out=out, calibration_size=16), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_data_root(request: pytest.FixtureRequest) -> Path:
    """The tiny dataset, or $KARMMA_TEST_DATA when the runtime job runs without the generator's deps."""
    import os

    prebuilt = os.environ.get("KARMMA_TEST_DATA")
    return Path(prebuilt) if prebuilt else request.getfixturevalue("tiny_dataset")
