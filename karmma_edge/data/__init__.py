"""Datasets for karmma-edge: EPIC-100 / SSv2 readers and the built-in synthetic benchmark (no torch).

    from karmma_edge.data import open_dataset, synthesize
    root = synthesize(Path("data/tiny"), preset="tiny", seed=0)
    ds = open_dataset(root, "train", InputSpec())
    clip = ds.load(0)            # clip.inputs["rgb"|"flow"|"audio"]
"""

from __future__ import annotations

from pathlib import Path

from karmma_edge.data.types import Clip, Dataset, Segment
from karmma_edge.errors import DataError
from karmma_edge.inputs import InputSpec

FORMATS: tuple[str, ...] = ("epic100", "ssv2")


def open_dataset(root: Path, split: str, spec: InputSpec, fmt: str = "epic100") -> Dataset:
    """A split of a dataset on disk; `fmt` is "epic100" (also the synthetic data) or "ssv2"."""
    if fmt == "epic100":
        from karmma_edge.data.epic100 import Epic100Dataset
        return Epic100Dataset(Path(root), split, spec)
    if fmt == "ssv2":
        from karmma_edge.data.ssv2 import SSv2Dataset
        return SSv2Dataset(Path(root), split, spec)
    raise DataError(f"unknown dataset format {fmt!r}; valid formats: {', '.join(FORMATS)}")


def report_split(root: Path, fmt: str = "epic100") -> str:
    """The split reported figures come from: `test` where the tree has a labelled one (the synthetic
    data does), else `validation` (EPIC-KITCHENS-100 and SSv2 withhold their test labels)."""
    if fmt == "epic100":
        from karmma_edge.data.epic_csv import SPLIT_FILES
        if (Path(root) / SPLIT_FILES["test"]).is_file():
            return "test"
    return "validation"


HELD_OUT_SPLITS: tuple[str, ...] = ("validation", "test")


def held_out_split(root: Path, fmt: str = "epic100", split: str | None = None, option: str = "--split") -> str:
    """The held-out split to score on: `split` as asked (checked to exist), else `report_split`."""
    if split is None:
        return report_split(root, fmt)
    if split not in HELD_OUT_SPLITS:
        raise DataError(f"{option} {split}: not a held-out split; valid: {', '.join(HELD_OUT_SPLITS)}")
    if split == "test" and report_split(root, fmt) != "test":
        raise DataError(f"{option} test: {root} has no labelled test split (EPIC-KITCHENS-100 and SSv2 withhold "
                        f"their test labels; the synthetic data has one); use {option} validation")
    return split


def synthesize(out: Path, preset: str = "tiny", seed: int = 0, progress: bool = True, fmt: str = "epic100") -> Path:
    """Write the synthetic benchmark in EPIC-100 (or SSv2) layout to `out` (deterministic by seed); returns `out`."""
    from karmma_edge.data.synth.generate import synthesize as _synthesize
    return _synthesize(Path(out), preset=preset, seed=seed, progress=progress, fmt=fmt)


__all__ = ["Clip", "Dataset", "Segment", "open_dataset", "report_split", "held_out_split", "synthesize", "FORMATS",
           "HELD_OUT_SPLITS"]
