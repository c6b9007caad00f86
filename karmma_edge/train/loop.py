"""Train the student with cross-entropy and modality dropout; checkpoints every epoch and resumes."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from karmma_edge.data.arrays import SplitArrays, load_split
from karmma_edge.errors import KarmmaError
from karmma_edge.metrics import top1
from karmma_edge.train.config import TrainConfig
from karmma_edge.train.models import Student, config_dict, create_student
from karmma_edge.train.runs import CHECKPOINT, save_atomic, write_run_info

log = logging.getLogger(__name__)


def draw_present(batch: int, num_modalities: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """[B, M] bool: each modality dropped with probability p, at least one kept per sample."""
    present = torch.rand(batch, num_modalities, generator=gen) >= p
    none = ~present.any(dim=1)
    if none.any():
        keep = torch.randint(0, num_modalities, (int(none.sum()),), generator=gen)
        present[none.nonzero().squeeze(1), keep] = True
    return present


def batch_inputs(arrays: SplitArrays, index: np.ndarray, modalities) -> dict[str, torch.Tensor]:
    return {m: torch.from_numpy(arrays.inputs[m][index]) for m in modalities}


@torch.no_grad()
def predict(student: Student, arrays: SplitArrays, modalities, batch_size: int = 64):
    """Logits of the student on every clip with only `modalities` present."""
    student.eval()
    verbs, nouns = [], []
    for start in range(0, len(arrays), batch_size):
        index = np.arange(start, min(start + batch_size, len(arrays)))
        v, n = student(batch_inputs(arrays, index, modalities))
        verbs.append(v.numpy())
        nouns.append(n.numpy())
    return np.concatenate(verbs), np.concatenate(nouns)


def train_student(cfg: TrainConfig, out: Path, progress: bool = True) -> dict:
    if cfg.data is None:
        raise KarmmaError("no dataset: set `data:` in the config or pass --data ROOT")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    from karmma_edge.data import open_dataset
    from karmma_edge.train.models import model_config

    spec = model_config(cfg.model).spec
    meta = open_dataset(cfg.data, "train", spec, cfg.format)
    cache = out / "cache"
    train = load_split(cfg.data, "train", spec, cfg.format, cache_dir=cache, progress=progress,
                       description="decoding training clips")
    val = load_split(cfg.data, "validation", spec, cfg.format, cache_dir=cache, progress=progress,
                     description="decoding held-out clips")
    modalities = tuple(train.inputs)
    student = create_student(cfg.model, len(meta.verb_classes), len(meta.noun_classes), modalities)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch = 0
    ckpt_path = out / CHECKPOINT
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt.get("config") == cfg.model_dump(mode="json") and ckpt["epoch"] < cfg.epochs:
            student.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            gen.set_state(ckpt["generator"])
            start_epoch = ckpt["epoch"]
            log.info("resuming %s from epoch %d", out, start_epoch)

    from rich.progress import Progress

    history = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("training student", total=cfg.epochs * steps_per_epoch,
                            completed=start_epoch * steps_per_epoch)
        for epoch in range(start_epoch, cfg.epochs):
            student.train()
            order = torch.randperm(len(train), generator=gen).numpy()
            t0, total = time.time(), 0.0
            for step in range(steps_per_epoch):
                index = np.sort(order[step * cfg.batch_size:(step + 1) * cfg.batch_size])
                present = draw_present(len(index), len(modalities), cfg.modality_dropout, gen)
                v, n = student(batch_inputs(train, index, modalities), present)
                loss = F.cross_entropy(v, torch.from_numpy(train.verb[index])) + \
                    F.cross_entropy(n, torch.from_numpy(train.noun[index]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss)
                bar.advance(task)
            metrics = top1(*predict(student, val, modalities), val.verb, val.noun)
            history.append({"epoch": epoch + 1, "loss": total / steps_per_epoch, **metrics})
            log.info("epoch %d loss %.3f action %.1f (%.0fs)", epoch + 1, total / steps_per_epoch,
                     metrics["action_top1"], time.time() - t0)
            save_atomic({"model": student.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "generator": gen.get_state(),
                         "epoch": epoch + 1, "config": cfg.model_dump(mode="json")}, ckpt_path)

    info = {
        "kind": "student", "method": "baseline_dropout" if cfg.modality_dropout > 0 else "baseline",
        "model": cfg.model, "model_config": config_dict(cfg.model), "modalities": list(modalities),
        "classes": {"verb": meta.verb_classes, "noun": meta.noun_classes},
        "input_spec": spec.to_dict(), "data": {"root": str(Path(cfg.data).resolve()), "format": cfg.format},
        "config": cfg.model_dump(mode="json"), "history": history,
        "metrics": history[-1] if history else {},
    }
    write_run_info(out, info)
    return info
