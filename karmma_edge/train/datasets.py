"""Training input: batches of one split through a torch DataLoader, sharded across torchrun processes.

Memory is bounded by workers and batch, never by the dataset: a split small enough
(`decoded_cache_gb`) is decoded once into memory-mapped .npy files on disk (`data.arrays`) and read
from there every epoch, as the demo always did; a larger one is decoded clip by clip, on the fly, by
the DataLoader's workers from frame folders, per-video tars or videos (the readers in `data/`).

Every process draws the same seeded order of the whole split per epoch (from the run's generator, so
a checkpoint restores it) and takes its share of each global batch: the processes see disjoint parts
of every epoch, and a run resumed from a mid-epoch checkpoint reads exactly the batches it had left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from karmma_edge.data.arrays import SplitArrays, load_split, split_nbytes
from karmma_edge.inputs import InputSpec
from karmma_edge.train import distributed as dist


class ClipDataset(Dataset):
    """Evaluation-mode clips of one split, `modalities` only; batched reads through `__getitems__`."""

    def __init__(self, root: Path, split: str, spec: InputSpec, fmt: str, modalities: tuple[str, ...],
                 arrays: SplitArrays | None = None):
        self.root, self.split, self.spec, self.fmt = Path(root), split, spec, fmt
        self.modalities = modalities
        self.arrays = arrays            # the memory-mapped decoded split, or None: decode on the fly
        self._reader = None
        self._length = len(arrays) if arrays is not None else len(self.reader())

    def reader(self):
        # Opened in the process that reads (each worker its own): readers hold file handles.
        if self._reader is None:
            from karmma_edge.data import open_dataset

            self._reader = open_dataset(self.root, self.split, self.spec, self.fmt)
        return self._reader

    def __len__(self) -> int:
        return self._length

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        if self.arrays is not None:
            inputs = {m: np.ascontiguousarray(self.arrays.inputs[m][index]) for m in self.modalities}
        else:
            clips = [self.reader().load(int(i), train=False) for i in index]
            inputs = {m: np.stack([c.inputs[m] for c in clips]) for m in self.modalities}
        return {"index": torch.from_numpy(index), **{m: torch.from_numpy(x) for m, x in inputs.items()}}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([i])


def _batch_as_is(batch):
    return batch        # __getitems__ already stacked it


class ShardedBatches(Sampler[list[int]]):
    """This process's share (rank::world) of each global batch of the epoch's order, from `start`."""

    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size = n, batch_size
        self.order: np.ndarray = np.arange(n)
        self.start = 0

    @property
    def steps(self) -> int:
        return max(1, self.n // self.batch_size)

    def global_batch(self, step: int) -> np.ndarray:
        return self.order[step * self.batch_size:(step + 1) * self.batch_size]

    def __len__(self) -> int:
        return self.steps - self.start

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            yield dist.shard(self.global_batch(step)).tolist()


class Batches:
    """(this process's indices, its inputs or None) per step of an epoch; `epoch(order, start)`."""

    def __init__(self, n: int, batch_size: int, dataset: ClipDataset | None = None, workers: int = 0):
        self.sampler = ShardedBatches(n, batch_size)
        self.loader = None
        if dataset is not None:
            # Workers only where they decode: reading a memory-mapped cache is faster in-process.
            workers = workers if dataset.arrays is None else 0
            self.loader = DataLoader(dataset, batch_sampler=self.sampler, collate_fn=_batch_as_is,
                                     num_workers=workers, persistent_workers=workers > 0,
                                     prefetch_factor=2 if workers > 0 else None)

    @property
    def steps(self) -> int:
        return self.sampler.steps

    def epoch(self, order: np.ndarray, start: int = 0) -> Iterator[tuple[np.ndarray, dict | None]]:
        self.sampler.order, self.sampler.start = order, start
        if self.loader is None:
            for shard in self.sampler:
                yield np.asarray(shard, dtype=np.int64), None
            return
        for batch in self.loader:
            yield batch.pop("index").numpy(), batch


def clip_dataset(root: Path, split: str, spec: InputSpec, fmt: str, cache: Path, cache_limit_gb: float,
                 progress: bool = True, modalities: tuple[str, ...] | None = None) -> ClipDataset:
    """The split's clips: decoded once into `cache` (memory-mapped) when at most `cache_limit_gb`
    decoded, else decoded on the fly by whoever reads them."""
    from karmma_edge.data import open_dataset

    ds = open_dataset(root, split, spec, fmt)
    mods = tuple(m for m in ds.wanted() if modalities is None or m in modalities)
    arrays = None
    if split_nbytes(len(ds), spec, mods) <= cache_limit_gb * 2 ** 30:
        arrays = dist.main_first(lambda: load_split(root, split, spec, fmt, mods, cache, progress,
                                                    description=f"decoding {split} clips"))
    return ClipDataset(root, split, spec, fmt, mods, arrays)


def split_labels(root: Path, split: str, spec: InputSpec, fmt: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(verb, noun, ids) of every clip of a split, from its annotations alone."""
    from karmma_edge.data import open_dataset

    ds = open_dataset(root, split, spec, fmt)
    return (np.array([s.verb_class for s in ds.segments], dtype=np.int64),
            np.array([s.noun_class for s in ds.segments], dtype=np.int64), [s.id for s in ds.segments])
