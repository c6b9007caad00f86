"""EPIC-100 annotation CSVs: segments, class lists and per-video fps, with columns checked by name."""

from __future__ import annotations

import csv
from pathlib import Path

from karmma_edge.data.types import Segment
from karmma_edge.errors import DataError

# Columns the EPIC-100 split CSVs carry (issue 3); the reader needs the ones in REQUIRED.
EPIC_COLUMNS: tuple[str, ...] = (
    "narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
    "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
    "noun_class", "all_nouns", "all_noun_classes",
)
REQUIRED: tuple[str, ...] = (
    "narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "verb_class", "noun_class",
)
SPLIT_FILES: dict[str, str] = {
    "train": "EPIC_100_train.csv",
    "validation": "EPIC_100_validation.csv",
    # Synthetic data only: the larger, separately seeded pool that stands in for the data real
    # feature extractors were pre-trained on (see karmma_edge/data/synth/README section).
    "pretrain": "KARMMA_pretrain.csv",
    # Synthetic data only: a labelled test split (EPIC-100's own test labels are withheld). Every
    # choice is made on validation; reported figures are on test (see docs/training.md).
    "test": "KARMMA_test.csv",
}
# Splits a tree may lack: EPIC-KITCHENS-100 itself ships only train and validation with labels.
OPTIONAL_SPLITS: tuple[str, ...] = ("pretrain", "test")
VERB_CLASSES = "EPIC_100_verb_classes.csv"
NOUN_CLASSES = "EPIC_100_noun_classes.csv"
VIDEO_INFO = "EPIC_100_video_info.csv"


def _read_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; an EPIC-100 root needs it (see `karmma-edge data check`)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(header) or 'empty'}); "
                f"every segment in it needs them — use the EPIC-100 CSV with columns {', '.join(required)}"
            )
        return list(reader)


def _int(path: Path, row: dict[str, str], col: str, seg: str) -> int:
    try:
        return int(row[col])
    except (TypeError, ValueError):
        raise DataError(f"{path}: segment {seg}: column {col} is {row.get(col)!r}, not an integer; fix that row") from None


def _extra_value(text: str) -> object:
    # Extra columns are free-form; numbers come back as numbers so callers can threshold them.
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def read_segments(path: Path) -> list[Segment]:
    rows = _read_rows(path, REQUIRED)
    known = set(EPIC_COLUMNS)
    out: list[Segment] = []
    for row in rows:
        seg = row["narration_id"]
        start = _int(path, row, "start_frame", seg)
        stop = _int(path, row, "stop_frame", seg)
        if start < 1 or stop < start:
            raise DataError(f"{path}: segment {seg}: start_frame {start} / stop_frame {stop} invalid "
                            "(frames are 1-indexed and stop_frame >= start_frame); fix that row")
        extra = {k: _extra_value(v) for k, v in row.items() if k not in known and k is not None}
        out.append(Segment(
            id=seg, video_id=row["video_id"], participant_id=row["participant_id"],
            start_frame=start, stop_frame=stop,
            verb_class=_int(path, row, "verb_class", seg), noun_class=_int(path, row, "noun_class", seg),
            extra=extra,
        ))
    return out


def read_classes(path: Path) -> list[str]:
    """Class keys ordered by id; ids must be 0..n-1 so a class index is a list position."""
    rows = _read_rows(path, ("id", "key"))
    by_id: dict[int, str] = {}
    for row in rows:
        try:
            by_id[int(row["id"])] = row["key"]
        except ValueError:
            raise DataError(f"{path}: class id {row['id']!r} is not an integer; fix that row") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{path}: class ids must be 0..{len(by_id) - 1} without gaps")
    return [by_id[i] for i in range(len(by_id))]


def read_video_fps(path: Path) -> dict[str, float]:
    rows = _read_rows(path, ("video_id", "fps"))
    out: dict[str, float] = {}
    for row in rows:
        try:
            out[row["video_id"]] = float(row["fps"])
        except ValueError:
            raise DataError(f"{path}: video {row['video_id']}: fps {row['fps']!r} is not a number; fix that row") from None
    return out
