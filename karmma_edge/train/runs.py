"""A training run on disk: run.json (what was trained, on what, with which spec) and checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from karmma_edge.atomic import atomic_file, atomic_write
from karmma_edge.errors import KarmmaError
from karmma_edge.file_formats import read_json
from karmma_edge.inputs import InputSpec
from karmma_edge.metrics import label_heads
from karmma_edge.train.models import Student, create_student

RUN_FILE = "run.json"
CHECKPOINT = "model.pt"


def checkpoint_id(run_dir: Path) -> str:
    """The short hash of a run's checkpoint: what a bundle's model_id names, and what the demo keys reuse on."""
    from karmma_edge.bundle import sha256_file

    return sha256_file(Path(run_dir) / CHECKPOINT)[:12]


def save_atomic(obj, path: Path) -> None:
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def write_run_info(run_dir: Path, info: dict) -> None:
    atomic_write(run_dir / RUN_FILE, json.dumps(info, indent=2, default=str) + "\n")


def read_run_info(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise KarmmaError(f"run directory {run_dir} does not exist; train one with "
                          f"`karmma-edge train student --config FILE --out {run_dir}`")
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise KarmmaError(f"{path} is missing: {run_dir} is not a finished training run")
    return read_json(path, "retrain the run", KarmmaError)


def load_student(run_dir: Path) -> tuple[Student, dict]:
    """The trained student of a run, in eval mode, and its run info."""
    info = read_run_info(run_dir)
    ckpt_path = Path(run_dir) / CHECKPOINT
    if not ckpt_path.is_file():
        raise KarmmaError(f"{ckpt_path} is missing; retrain the run or point --run at a finished run")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        student = create_student(info["model"], label_heads(info["classes"]), tuple(info["modalities"]))
        student.load_state_dict(ckpt["model"])
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as e:
        raise KarmmaError(f"cannot load the checkpoint {ckpt_path} ({type(e).__name__}: {str(e)[:200]}); "
                          "it is truncated or from another model: retrain the run") from None
    if InputSpec.from_dict(info["input_spec"]) != student.spec:
        raise KarmmaError(f"{run_dir / RUN_FILE} was trained with another input spec than model "
                          f"{info['model']!r} has now; retrain the run")
    return student.eval(), info
