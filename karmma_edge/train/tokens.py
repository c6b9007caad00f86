"""Extractor tokens computed once per split and cached on disk.

The key is the extractor's checksum plus everything that decides which samples it saw (dataset,
split, clip-sampling spec, evaluation-mode sampling), so the teacher and the distilled student read
tokens from disk and never rerun an extractor; a retrained or replaced extractor gets new tokens.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from karmma_edge.atomic import atomic_file
from karmma_edge.inputs import InputSpec
from karmma_edge.train.extractors import TokenSource


def token_path(source: TokenSource, root: Path, split: str, fmt: str, spec: InputSpec, cache_dir: Path) -> Path:
    """The cache file of `source`'s tokens of `split`, read at `spec` (the extractor's own)."""
    key = hashlib.sha256(json.dumps(
        {"extractor": source.checksum, "root": str(Path(root).resolve()), "split": split, "format": fmt,
         "spec": spec.to_dict(), "sampling": "eval"}, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(cache_dir) / "tokens" / f"{split}-{source.modality}-{key}.npy"


def split_tokens(sources: dict[str, TokenSource], root: Path, split: str, fmt: str, spec: InputSpec,
                 cache_dir: Path, progress: bool = True, batch_size: int = 32, workers: int = 0,
                 decoded_cache_gb: float = 2.0) -> dict[str, np.ndarray]:
    """Per modality float32 [N, n, D] for every clip of the split, in the split's order, memory-mapped.

    Each modality is read at its extractor's own input spec (`TokenSource.spec`), `spec` where the
    extractor declares none. Tokens are written batch by batch into the .npy file, and clips are
    decoded on the fly (by `workers` processes) when the split is too large to cache decoded.
    """
    from torch.utils.data import DataLoader

    from karmma_edge.train.datasets import _batch_as_is, clip_dataset

    specs = {m: s.spec or spec for m, s in sources.items()}
    paths = {m: token_path(s, root, split, fmt, specs[m], cache_dir) for m, s in sources.items()}
    missing = [m for m, p in paths.items() if not p.is_file()]
    if missing:
        from rich.progress import Progress

        with Progress(disable=not progress, transient=True) as bar:
            for m in missing:
                # Every modality read at the same spec shares one decode of the split (a clip's load decodes
                # them all anyway), the very cache the student's training and the build read at that spec.
                same_spec = tuple(x for x in sources if specs[x] == specs[m])
                dataset = clip_dataset(root, split, specs[m], fmt, cache_dir, decoded_cache_gb, progress, same_spec)
                loader = DataLoader(dataset, batch_sampler=_InOrder(len(dataset), batch_size), collate_fn=_batch_as_is,
                                    num_workers=workers if dataset.arrays is None else 0)
                task = bar.add_task(f"{m} tokens of {split}", total=len(dataset))
                with atomic_file(paths[m], suffix=".npy") as tmp:
                    out = None
                    for batch in loader:
                        index = batch["index"].numpy()
                        t = sources[m].tokens(batch[m].numpy())
                        if out is None:
                            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                            shape=(len(dataset), *t.shape[1:]))
                        out[index] = t
                        bar.advance(task, len(index))
                    out.flush()
                    del out
    return {m: np.load(p, mmap_mode="r") for m, p in paths.items()}


class _InOrder:
    """Batches of consecutive clips, in the split's order."""

    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size = n, batch_size

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        for start in range(0, self.n, self.batch_size):
            yield list(range(start, min(start + self.batch_size, self.n)))
