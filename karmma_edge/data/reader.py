"""What the dataset readers share: segment lookup, the modalities a load returns, and turning a
missing file into a `DataError` that names the segment and the fix. No torch here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from karmma_edge.data.frames import MissingData
from karmma_edge.data.types import Clip, Segment
from karmma_edge.errors import DataError
from karmma_edge.inputs import FlowEncoding, InputSpec


class SegmentReader:
    """Base of the readers (satisfies `types.Dataset`); a subclass fills the attributes in its
    `__init__`, calls `_index_segments()` once `segments` is set, and implements `_load`."""

    root: Path
    split: str
    spec: InputSpec
    csv_path: Path
    segments: list[Segment]
    verb_classes: list[str]
    noun_classes: list[str]
    modalities: tuple[str, ...]
    flow_encoding: FlowEncoding | None = None     # how its flow frames were made, where known
    segment_noun = "segment"           # what a segment id names, in messages
    unknown_id_fix = ""                # appended to the message for an unknown id
    missing_fix = "restore the file or run `karmma-edge data check --root {root}` to list every problem"

    def _index_segments(self) -> None:
        self._by_id = {s.id: i for i, s in enumerate(self.segments)}

    def __len__(self) -> int:
        return len(self.segments)

    def find(self, segment_id: str) -> int | None:
        return self._by_id.get(segment_id)

    def index_of(self, segment_id: str) -> int:
        i = self.find(segment_id)
        if i is None:
            raise DataError(f"{self.csv_path}: no {self.segment_noun} {segment_id!r} in split {self.split}"
                            f"{self.unknown_id_fix}")
        return i

    def wanted(self) -> tuple[str, ...]:
        return tuple(m for m in self.modalities if m in self.spec.modalities)

    def load(self, i: int, train: bool = False, rng: np.random.Generator | None = None) -> Clip:
        seg = self.segments[i]
        try:
            return self._load(seg, train, rng)
        except MissingData as exc:
            raise DataError(f"{exc.path}: {exc.reason} (needed by segment {seg.id} of {self.csv_path.name}); "
                            + self.missing_fix.format(root=self.root)) from None

    def _load(self, seg: Segment, train: bool, rng: np.random.Generator | None) -> Clip:
        raise NotImplementedError
