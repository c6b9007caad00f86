"""The student's training: cross-entropy with modality dropout, or distillation from a teacher
(KARMMA_S), on the shared loop of `train.fit`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from karmma_edge.data.arrays import SplitArrays, load_split
from karmma_edge.metrics import dataset_classes, head_labels, label_heads, scores
from karmma_edge.train import distributed as dist
from karmma_edge.train.config import TrainConfig
from karmma_edge.train.datasets import split_labels
from karmma_edge.train.extractors import load_student_encoders, student_encoders
from karmma_edge.train.fit import batch_inputs, cache_dir, fit, prepare, training_batches
from karmma_edge.train.models import Student, config_dict, create_student
from karmma_edge.train.runs import write_run_info


@torch.no_grad()
def predict(student: Student, arrays: SplitArrays, modalities, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Logits of each label head of the student on every clip with only `modalities` present."""
    student.eval()
    device = next(student.parameters()).device
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, len(arrays), batch_size):
        index = np.arange(start, min(start + batch_size, len(arrays)))
        parts.append(student(batch_inputs(arrays, index, modalities, device)))
    return {h: np.concatenate([p[i].cpu().numpy() for p in parts]) for i, h in enumerate(student.outputs)}


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, alpha: float, t: float) -> torch.Tensor:
    """a * T^2 * KL(teacher || student) + (1 - a) * CE, with both distributions softened by T."""
    kl = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                  reduction="batchmean", log_target=True)
    return alpha * t * t * kl + (1 - alpha) * F.cross_entropy(student, target)


def method_of(cfg: TrainConfig) -> str:
    if cfg.teacher is not None:
        return "karmma_s"
    if cfg.init_extractors is not None:
        return "control"
    return "baseline_dropout" if cfg.modality_dropout > 0 else "baseline"


def train_student(cfg: TrainConfig, out: Path, progress: bool = True, stop_after: int | None = None,
                  stop_after_steps: int | None = None, every_epoch: bool = True) -> dict:
    """Train a student: CE (baselines), from pre-trained encoders (`cfg.init_extractors`: the control),
    or distilled from `cfg.teacher` (KARMMA_S, which reproduce also starts from those encoders)."""
    # A mismatched init_extractors run is refused before anything is written or decoded.
    encoders = student_encoders(cfg.init_extractors, cfg.model) if cfg.init_extractors is not None else None
    device = prepare(cfg, out)
    out = Path(out)
    from karmma_edge.data import open_dataset
    from karmma_edge.train.models import model_config

    spec = model_config(cfg.model).spec
    meta = open_dataset(cfg.data, "train", spec, cfg.format)
    cache = cache_dir(cfg, out)
    batches, train = training_batches(cfg, "train", spec, cache, progress)
    val = dist.main_first(lambda: load_split(cfg.data, "validation", spec, cfg.format, train.modalities, cache,
                                             progress=progress, description="decoding held-out clips"))
    modalities = train.modalities
    classes = dataset_classes(meta)
    outputs = label_heads(classes)
    student = create_student(cfg.model, outputs, modalities)
    if encoders is not None:
        load_student_encoders(student, encoders, cfg.init_extractors)
    verb, noun, ids = split_labels(cfg.data, "train", spec, cfg.format)
    labels = {h: torch.from_numpy(y).to(device) for h, y in head_labels(outputs, verb, noun).items()}
    val_labels = head_labels(outputs, val.verb, val.noun)

    teacher = None
    if cfg.teacher is not None:
        from karmma_edge.train.teacher import load_teacher_with_tokens

        teacher, tokens = dist.main_first(lambda: load_teacher_with_tokens(
            cfg.teacher, cfg.data, "train", cfg.format, ids, modalities, cache, progress))
        teacher.to(device)

    def loss_fn(model: nn.Module, index: np.ndarray, inputs: dict, present: torch.Tensor | None) -> torch.Tensor:
        logits = model(inputs, present)
        if teacher is None:
            return sum(F.cross_entropy(z, labels[h][index]) for h, z in zip(outputs, logits))
        with torch.no_grad():      # the teacher sees the same dropped subset, on its cached tokens
            taught = teacher({m: torch.from_numpy(tokens[m][index]).to(device) for m in modalities}, present)
        a, t = cfg.kd_alpha, cfg.kd_temperature
        return sum(kd_loss(z, tz, labels[h][index], a, t) for h, z, tz in zip(outputs, logits, taught))

    method = method_of(cfg)
    history = fit(student, batches, len(modalities), cfg.modality_dropout, loss_fn,
                  lambda model: scores(predict(model, val, modalities), val_labels),
                  cfg, out, f"training {method}", device, progress, stop_after, stop_after_steps,
                  every_epoch)
    info = {
        "kind": "student", "method": method,
        "model": cfg.model, "model_config": config_dict(cfg.model), "modalities": list(modalities),
        "classes": classes, "input_spec": spec.to_dict(),
        "flow_encoding": meta.flow_encoding.to_dict() if meta.flow_encoding and "flow" in modalities else None,
        "data": {"root": str(Path(cfg.data).resolve()), "format": cfg.format},
        "config": cfg.model_dump(mode="json"), "history": history,
        "metrics": history[-1] if history else {},
    }
    if dist.is_main():
        write_run_info(out, info)
    dist.barrier()
    return info
