"""`data inspect`: the exact evaluation-mode arrays a model receives for one segment, as an .npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from karmma_edge.errors import DataError
from karmma_edge.inputs import InputSpec

SPLITS_TO_SEARCH = ("train", "validation", "test", "pretrain")


def find_segment(root: Path, segment_id: str, spec: InputSpec, fmt: str):
    """(dataset, index) of a segment id, searching every split the dataset has."""
    from karmma_edge.data import open_dataset
    from karmma_edge.data.epic_csv import SPLIT_FILES
    from karmma_edge.data.ssv2 import SPLIT_FILES as SSV2_FILES

    files = SPLIT_FILES if fmt == "epic100" else SSV2_FILES
    searched = []
    for split, name in files.items():
        if not (Path(root) / name).is_file():
            continue
        ds = open_dataset(root, split, spec, fmt)
        searched.append(name)
        i = ds.find(segment_id)
        if i is not None:
            return ds, i
    if not searched:
        raise DataError(f"{root}: no split file ({', '.join(files.values())}) found; is --root a {fmt} dataset?")
    raise DataError(f"segment {segment_id!r} is in none of {', '.join(searched)} under {root}; check --id")


def inspect_segment(root: Path, segment_id: str, out: Path, spec: InputSpec, fmt: str = "epic100") -> dict[str, np.ndarray]:
    ds, i = find_segment(Path(root), segment_id, spec, fmt)
    clip = ds.load(i, train=False)
    arrays: dict[str, np.ndarray] = dict(clip.inputs)     # rgb / flow / audio: those the dataset has
    arrays["rgb_frames"] = np.asarray(clip.rgb_frames, np.int64)
    arrays["flow_frames"] = np.asarray(clip.flow_frames, np.int64)
    arrays["audio_range"] = np.asarray(clip.audio_range, np.int64)
    arrays["verb_class"] = np.asarray(clip.verb_class, np.int64)
    arrays["noun_class"] = np.asarray(clip.noun_class, np.int64)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return arrays
