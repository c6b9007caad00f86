"""The training loop every stage shares (extractors, teacher, students).

`fit` owns what makes a run repeatable and resumable: seeds, one generator for batch order and
modality dropout, a checkpoint every epoch holding model, optimiser, schedule and every RNG state,
and torchrun's data-parallel sharding (every process draws the same global batch, takes its share).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from karmma_edge.data.arrays import SplitArrays
from karmma_edge.errors import KarmmaError
from karmma_edge.train import distributed as dist
from karmma_edge.train.config import Optim
from karmma_edge.train.datasets import Batches, ClipDataset, clip_dataset
from karmma_edge.train.runs import CHECKPOINT, save_atomic

log = logging.getLogger(__name__)

# (model, this process's batch indices, their inputs or None, their present mask or None) -> loss
LossFn = Callable[[nn.Module, np.ndarray, "dict[str, torch.Tensor] | None", "torch.Tensor | None"], torch.Tensor]


def draw_present(batch: int, num_modalities: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """[B, M] bool: each modality dropped with probability p, at least one kept per sample."""
    present = torch.rand(batch, num_modalities, generator=gen) >= p
    none = ~present.any(dim=1)
    if none.any():
        keep = torch.randint(0, num_modalities, (int(none.sum()),), generator=gen)
        present[none.nonzero().squeeze(1), keep] = True
    return present


def batch_inputs(arrays: SplitArrays, index: np.ndarray, modalities, device=None) -> dict[str, torch.Tensor]:
    return {m: torch.from_numpy(arrays.inputs[m][index]).to(device) for m in modalities}


class Interrupted(Exception):
    """Raised by `fit(stop_after=...)`: the run stopped on purpose after a checkpoint."""


def prepare(cfg: Optim, out: Path) -> torch.device:
    """Process group, threads and seeds for a run writing to `out`."""
    if cfg.data is None:
        raise KarmmaError("no dataset: set `data:` in the config or pass --data ROOT")
    device = dist.setup()
    torch.set_num_threads(cfg.threads or dist.default_threads())
    torch.manual_seed(cfg.seed)
    Path(out).mkdir(parents=True, exist_ok=True)
    return device


def cache_dir(cfg: Optim, out: Path) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else Path(out) / "cache"


def training_batches(cfg: Optim, split: str, spec, cache: Path, progress: bool = True,
                     modalities: tuple[str, ...] | None = None) -> tuple[Batches, ClipDataset]:
    """The split's clips as this process's batches, cached or streamed by `cfg.workers` workers."""
    dataset = clip_dataset(cfg.data, split, spec, cfg.format, cache, cfg.decoded_cache_gb, progress, modalities)
    return Batches(len(dataset), cfg.batch_size, dataset, cfg.workers), dataset


# long: one loop resumable at any epoch or step; the optimizer, scheduler, order and position it checkpoints
# are shared by every step, and splitting it would pass all of them between the pieces.
def fit(model: nn.Module, batches: Batches, num_modalities: int, dropout: float, loss_fn: LossFn,
        evaluate: Callable[[nn.Module], dict], cfg: Optim, out: Path, description: str,
        device: torch.device, progress: bool = True, stop_after: int | None = None,
        stop_after_steps: int | None = None, every_epoch: bool = True) -> list[dict]:
    """Train `model` for cfg.epochs; resume from out/model.pt if it holds this config's unfinished run.

    Returns the per-epoch history (held-out metrics from `evaluate`). Every stage (extractors, teacher,
    students) scores on `validation` here, never `test`: the history is what epochs, p and the other
    choices are made on, and reported figures come from `evaluate_run` on test. A checkpoint is written after
    every epoch and, with `cfg.checkpoint_steps`, every that many steps within one (holding the epoch's
    order, so the rest of the epoch reads the same batches). `stop_after` / `stop_after_steps` end the
    process's work after that many epochs / steps of this call, checkpoint written, as a kill would.
    `every_epoch=False` scores only the last epoch (the demo: a third of a student's epoch otherwise;
    the weights are the same, as scoring draws no random numbers).
    """
    out = Path(out)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = batches.steps
    n_train = batches.sampler.n
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(cfg.seed)
    config = cfg.model_dump(mode="json")
    start, first_step, order, total, history = 0, 0, None, 0.0, []
    ckpt_path = out / CHECKPOINT
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt.get("config") == config and ckpt.get("epoch", cfg.epochs) < cfg.epochs:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            gen.set_state(ckpt["generator"])
            torch.set_rng_state(ckpt["torch_rng"])
            start, history = ckpt["epoch"], ckpt["history"]
            if ckpt.get("step", 0) > 0:
                first_step, order, total = ckpt["step"], ckpt["order"], ckpt["loss_total"]
            log.info("resuming %s from epoch %d step %d", out, start, first_step)
    trained = dist.wrap(model, device)

    def checkpoint(epoch: int, step: int, order_, total_) -> None:
        if dist.is_main():
            save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "generator": gen.get_state(),
                         "torch_rng": torch.get_rng_state(), "epoch": epoch, "step": step,
                         "order": order_, "loss_total": total_, "history": history, "config": config}, ckpt_path)
        dist.barrier()

    from rich.progress import Progress

    done_steps = 0
    with Progress(disable=not (progress and dist.is_main()), transient=True) as bar:
        task = bar.add_task(description, total=cfg.epochs * steps, completed=start * steps + first_step)
        for epoch in range(start, cfg.epochs):
            if stop_after is not None and epoch - start >= stop_after:
                raise Interrupted(f"stopped after epoch {epoch} as asked; rerun to resume")
            model.train()
            if order is None:
                order, total = torch.randperm(n_train, generator=gen).numpy(), 0.0
            t0 = time.time()
            for step, (index, inputs) in enumerate(batches.epoch(order, first_step), start=first_step):
                glob = batches.sampler.global_batch(step)
                # Drawn for the whole global batch on every process, so processes stay in step.
                present = draw_present(len(glob), num_modalities, dropout, gen) if dropout > 0 else None
                present = None if present is None else dist.shard(present).to(device)
                if inputs is not None:
                    inputs = {m: x.to(device) for m, x in inputs.items()}
                loss = loss_fn(trained, index, inputs, present)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach())
                bar.advance(task)
                done_steps += 1
                stop = stop_after_steps is not None and done_steps >= stop_after_steps
                mid = step + 1 < steps
                if mid and (stop or (cfg.checkpoint_steps and (step + 1) % cfg.checkpoint_steps == 0)):
                    checkpoint(epoch, step + 1, order, total)
                if stop and mid:
                    raise Interrupted(f"stopped after {done_steps} steps as asked; rerun to resume")
            seconds = time.time() - t0
            first_step, order = 0, None
            if dist.is_main() and (every_epoch or epoch + 1 == cfg.epochs):
                metrics = evaluate(model)
                history.append({"epoch": epoch + 1, "loss": total / steps, **metrics})
                log.info("%s: epoch %d loss %.3f %s (%.0fs, %.1f clips/s)", description, epoch + 1, total / steps,
                         {k: round(v, 1) for k, v in metrics.items()}, seconds, n_train / max(seconds, 1e-9))
            checkpoint(epoch + 1, 0, None, 0.0)
            if stop_after_steps is not None and done_steps >= stop_after_steps and epoch + 1 < cfg.epochs:
                raise Interrupted(f"stopped after {done_steps} steps as asked; rerun to resume")
    return history
