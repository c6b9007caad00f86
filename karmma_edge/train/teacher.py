"""The teacher: frozen extractors' cached tokens -> the fusion block of DESIGN section 1.

Trained with cross-entropy and modality dropout; a missing modality's tokens are replaced by its
learned tokens, exactly as in the student (the same `Fusion` module, wider and deeper).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from karmma_edge.bundle import sha256_file
from karmma_edge.errors import KarmmaError
from karmma_edge.inputs import InputSpec
from karmma_edge.metrics import dataset_classes, head_labels, label_heads, scores
from karmma_edge.profiles import MODALITIES
from karmma_edge.train import distributed as dist
from karmma_edge.train.config import TeacherConfig
from karmma_edge.train.extractors import (TokenSource, load_extractor_file, load_source,
                                          load_trained_extractors)
from karmma_edge.train.datasets import Batches
from karmma_edge.train.fit import cache_dir, fit, prepare
from karmma_edge.train.models import Fusion, model_config
from karmma_edge.train.runs import CHECKPOINT, read_run_info, write_run_info
from karmma_edge.train.tokens import split_tokens


class Teacher(nn.Module):
    """Fusion over per-modality tokens; `forward(tokens, present)` mirrors `Student.forward`."""

    def __init__(self, token_dims: dict[str, tuple[int, int]], dim: int, depth: int, heads: int,
                 outputs: dict[str, int]):
        super().__init__()
        self.modalities = tuple(m for m in MODALITIES if m in token_dims)
        self.fusion = Fusion(token_dims, dim, depth, heads, outputs)
        self.outputs = self.fusion.outputs

    def forward(self, tokens: dict[str, torch.Tensor], present: torch.Tensor | None = None):
        batch = next(iter(tokens.values())).shape[0]
        parts = [self.fusion.tokens_for(m, tokens.get(m), batch, None if present is None else present[:, i])
                 for i, m in enumerate(self.modalities)]
        return self.fusion(parts)


def extractor_sources(cfg: TeacherConfig) -> tuple[dict[str, TokenSource], InputSpec]:
    if (cfg.extractors is None) == (not cfg.extractor_files):
        raise KarmmaError("the teacher config needs exactly one of `extractors:` (a `train extractors` run) "
                          "or `extractor_files:` (per modality a .pt2, TorchScript or .onnx file)")
    if cfg.extractors is not None:
        return load_trained_extractors(cfg.extractors)
    from karmma_edge.train.config import ExtractorFile

    spec = model_config(cfg.spec_model).spec
    files = {m: f if isinstance(f, ExtractorFile) else ExtractorFile(path=f) for m, f in cfg.extractor_files.items()}
    return {m: load_extractor_file(f.path, m, f.spec(spec)) for m, f in files.items()}, spec


def labels(root: Path, split: str, fmt: str, spec: InputSpec):
    """The split's reader, its classes by label head, and its labels by head."""
    from karmma_edge.data import open_dataset

    ds = open_dataset(root, split, spec, fmt)
    classes = dataset_classes(ds)
    return ds, classes, head_labels(label_heads(classes), np.array([s.verb_class for s in ds.segments]),
                                    np.array([s.noun_class for s in ds.segments]))


@torch.no_grad()
def predict_tokens(teacher: Teacher, tokens: dict[str, np.ndarray], modalities, batch_size: int = 256):
    teacher.eval()
    device = next(teacher.parameters()).device
    n = len(next(iter(tokens.values())))
    parts = []
    for start in range(0, n, batch_size):
        parts.append(teacher({m: torch.from_numpy(np.array(tokens[m][start:start + batch_size])).to(device)
                              for m in modalities}))
    return {h: np.concatenate([p[i].cpu().numpy() for p in parts]) for i, h in enumerate(teacher.outputs)}


def train_teacher(cfg: TeacherConfig, out: Path, progress: bool = True, every_epoch: bool = True) -> dict:
    device = prepare(cfg, out)
    out = Path(out)
    sources, spec = extractor_sources(cfg)
    cache = cache_dir(cfg, out)
    meta, classes, train_labels = labels(cfg.data, "train", cfg.format, spec)
    _, _, val_labels = labels(cfg.data, "validation", cfg.format, spec)
    train, val = (dist.main_first(lambda split=split: split_tokens(
        sources, cfg.data, split, cfg.format, spec, cache, progress, workers=cfg.workers,
        decoded_cache_gb=cfg.decoded_cache_gb)) for split in ("train", "validation"))
    modalities = tuple(m for m in MODALITIES if m in sources)
    token_dims = {m: tuple(train[m].shape[1:]) for m in modalities}
    outputs = label_heads(classes)
    teacher = Teacher(token_dims, cfg.fusion_dim, cfg.fusion_depth, cfg.fusion_heads, outputs)
    targets = {h: torch.from_numpy(y).to(device) for h, y in train_labels.items()}

    def loss_fn(net: nn.Module, index: np.ndarray, inputs: None, present: torch.Tensor | None) -> torch.Tensor:
        logits = net({m: torch.from_numpy(train[m][index]).to(device) for m in modalities}, present)
        return sum(F.cross_entropy(z, targets[h][index]) for h, z in zip(outputs, logits))

    history = fit(teacher, Batches(len(meta), cfg.batch_size), len(modalities), cfg.modality_dropout, loss_fn,
                  lambda net: scores(predict_tokens(net, val, modalities), val_labels),
                  cfg, out, "training teacher", device, progress, every_epoch=every_epoch)
    info = {"kind": "teacher", "method": "teacher", "modalities": list(modalities),
            "classes": classes,
            "token_dims": {m: list(d) for m, d in token_dims.items()},
            "fusion": {"dim": cfg.fusion_dim, "depth": cfg.fusion_depth, "heads": cfg.fusion_heads},
            "extractors": {m: {"origin": s.origin, "checksum": s.checksum, "input_spec": (s.spec or spec).to_dict()}
                           for m, s in sources.items()},
            "input_spec": spec.to_dict(), "cache_dir": str(cache.resolve()),
            "data": {"root": str(Path(cfg.data).resolve()), "format": cfg.format},
            "config": cfg.model_dump(mode="json"), "history": history, "metrics": history[-1] if history else {}}
    if dist.is_main():
        write_run_info(out, info)
    dist.barrier()
    return info


def load_teacher(run_dir: Path) -> tuple[Teacher, dict]:
    info = read_run_info(run_dir)
    if info.get("kind") != "teacher":
        raise KarmmaError(f"{run_dir} is a {info.get('kind')} run, not a teacher run")
    ckpt = torch.load(Path(run_dir) / CHECKPOINT, map_location="cpu", weights_only=True)
    teacher = Teacher({m: tuple(d) for m, d in info["token_dims"].items()}, info["fusion"]["dim"],
                      info["fusion"]["depth"], info["fusion"]["heads"], label_heads(info["classes"]))
    teacher.load_state_dict(ckpt["model"])
    return teacher.eval(), info


def teacher_sources(info: dict) -> dict[str, TokenSource]:
    """The teacher's extractors, checked against the checksums it was trained with."""
    sources = {}
    for m, rec in info["extractors"].items():
        path = Path(rec["origin"])
        if not path.is_file() or sha256_file(path) != rec["checksum"]:
            raise KarmmaError(f"the {m} extractor {path} is missing or changed since the teacher was trained; "
                              "retrain the teacher")
        sources[m] = load_source(path, m, InputSpec.from_dict(rec["input_spec"]) if "input_spec" in rec else None)
    return sources


def load_teacher_with_tokens(run_dir: Path, root: Path, split: str, fmt: str, ids: list[str], modalities,
                             cache: Path, progress: bool = True) -> tuple[Teacher, dict[str, np.ndarray]]:
    """The teacher and its tokens of `split` (from its own cache: no extractor reruns), aligned to `ids`."""
    teacher, info = load_teacher(run_dir)
    if tuple(teacher.modalities) != tuple(modalities):
        raise KarmmaError(f"teacher {run_dir} fuses {'+'.join(teacher.modalities)} but the student has "
                          f"{'+'.join(modalities)}; train both on the same modalities")
    spec = InputSpec.from_dict(info["input_spec"])
    tokens = split_tokens(teacher_sources(info), root, split, fmt, spec, Path(info["cache_dir"]), progress)
    ds, _, _ = labels(root, split, fmt, spec)
    if [s.id for s in ds.segments] != list(ids):
        raise KarmmaError(f"teacher tokens of {split} do not line up with the student's clips")
    return teacher, tokens
