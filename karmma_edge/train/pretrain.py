"""`train extractors`: pre-train the teacher's extractors as unimodal classifiers, then freeze them.

On the built-in data they stand in for extractors pre-trained on far more data than the student
sees (DESIGN section 1), so they train on the separately seeded `pretrain` pool by default. With a
student model (`model: student-m`) the same recipe pre-trains the student's own encoders, which
`TrainConfig.init_extractors` loads: reproduce's control (never distilled) and KARMMA_S start from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from karmma_edge.data.arrays import load_split
from karmma_edge.metrics import action_top1, dataset_classes, head_labels, label_heads
from karmma_edge.train import distributed as dist
from karmma_edge.train.config import ExtractorsConfig
from karmma_edge.train.extractors import UnimodalClassifiers, config_dict, extractor_file, pretrain_config
from karmma_edge.train.datasets import split_labels
from karmma_edge.train.fit import batch_inputs, cache_dir, fit, prepare, training_batches
from karmma_edge.train.runs import save_atomic, write_run_info


@torch.no_grad()
def unimodal_accuracy(model: UnimodalClassifiers, arrays, device, batch_size: int = 64) -> dict[str, float]:
    """Held-out action top-1 of each modality's own classifier."""
    model.eval()
    parts: dict[str, list] = {m: [] for m in model.modalities}
    for start in range(0, len(arrays), batch_size):
        index = np.arange(start, min(start + batch_size, len(arrays)))
        for m, logits in model(batch_inputs(arrays, index, model.modalities, device)).items():
            parts[m].append([z.cpu().numpy() for z in logits])
    labels = head_labels(model.outputs, arrays.verb, arrays.noun)
    return {f"{m}_action_top1": action_top1({h: np.concatenate([p[i] for p in ps]) for i, h in enumerate(model.outputs)},
                                            labels) for m, ps in parts.items()}


def train_extractors(cfg: ExtractorsConfig, out: Path, progress: bool = True, every_epoch: bool = True) -> dict:
    device = prepare(cfg, out)
    out = Path(out)
    from karmma_edge.data import open_dataset

    ecfg = pretrain_config(cfg.model)
    spec = ecfg.spec
    meta = open_dataset(cfg.data, cfg.split, spec, cfg.format)
    cache = cache_dir(cfg, out)
    batches, train = training_batches(cfg, cfg.split, spec, cache, progress)
    modalities = train.modalities
    val = dist.main_first(lambda: load_split(cfg.data, "validation", spec, cfg.format, modalities, cache,
                                             progress=progress, description="decoding held-out clips"))
    verb, noun, _ = split_labels(cfg.data, cfg.split, spec, cfg.format)
    classes = dataset_classes(meta)
    outputs = label_heads(classes)
    model = UnimodalClassifiers(ecfg, modalities, outputs)
    targets = {h: torch.from_numpy(y).to(device) for h, y in head_labels(outputs, verb, noun).items()}

    def loss_fn(net: nn.Module, index: np.ndarray, inputs: dict, present) -> torch.Tensor:
        out_ = net(inputs)
        return sum(sum(F.cross_entropy(z, targets[h][index]) for h, z in zip(outputs, logits))
                   for logits in out_.values())

    history = fit(model, batches, len(modalities), 0.0, loss_fn,
                  lambda net: unimodal_accuracy(net, val, device), cfg, out, "pre-training extractors",
                  device, progress, every_epoch=every_epoch)
    info = {"kind": "extractors", "model": cfg.model, "model_config": config_dict(cfg.model),
            "modalities": list(modalities), "classes": classes,
            "input_spec": spec.to_dict(), "data": {"root": str(Path(cfg.data).resolve()), "format": cfg.format,
                                                   "split": cfg.split},
            "config": cfg.model_dump(mode="json"), "history": history, "metrics": history[-1] if history else {}}
    if dist.is_main():
        for m in modalities:       # frozen from here on: the file's checksum keys the token cache
            save_atomic(model.extractors[m].state_dict(), extractor_file(out, m))
        write_run_info(out, info)
    dist.barrier()
    return info
