"""Plain records the readers hand out (one annotated segment, one loaded clip) and the `Dataset`
protocol every reader satisfies (no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from karmma_edge.inputs import InputSpec


@dataclass(frozen=True)
class Segment:
    """One annotated action segment; frames are 1-indexed and stop_frame is inclusive (EPIC-100)."""

    id: str                     # narration_id, e.g. "P01_01_0"
    video_id: str
    participant_id: str
    start_frame: int
    stop_frame: int
    verb_class: int
    noun_class: int
    # Columns beyond the EPIC-100 set (synthetic data: degradation, strength, snr_db, shape, ...).
    # Excluded from eq/hash so a Segment stays hashable.
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_frames(self) -> int:
        return self.stop_frame - self.start_frame + 1


@dataclass
class Clip:
    """The arrays a model receives for one segment, plus which frames and samples they came from."""

    inputs: dict[str, np.ndarray]   # "rgb" uint8 [T,H,W,3] RGB, "flow" uint8 [T,H,W,2] (u,v), "audio" float32 [S]
    verb_class: int
    noun_class: int
    rgb_frames: np.ndarray          # int64 [T], frame numbers as in the file names
    flow_frames: np.ndarray         # int64 [T], flow frame numbers as in the file names
    audio_range: tuple[int, int]    # (first, last+1) sample index of the window, in the file's own rate
    segment_id: str = ""


@runtime_checkable
class Dataset(Protocol):
    """One split of a dataset on disk, as every reader (EPIC-100, SSv2) offers it."""

    root: Path
    split: str
    spec: InputSpec
    csv_path: Path                  # the split's annotation file, named in messages
    segments: list[Segment]
    verb_classes: list[str]
    noun_classes: list[str]         # empty for a single-label dataset (SSv2)
    modalities: tuple[str, ...]     # those the dataset holds

    def __len__(self) -> int: ...

    def find(self, segment_id: str) -> int | None:
        """The index of a segment id, or None where this split has no such segment."""

    def index_of(self, segment_id: str) -> int:
        """The index of a segment id; a `DataError` naming the split where it has none."""

    def wanted(self) -> tuple[str, ...]:
        """Modalities `load` returns: those the dataset holds and the spec asks for."""

    def load(self, i: int, train: bool = False, rng: np.random.Generator | None = None) -> Clip:
        """The clip of segment `i`; a `DataError` naming the missing file and the fix."""
