"""`data check`: every missing or unreadable file of a dataset, with the segments that need it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from karmma_edge.data.frames import MissingData, frame_name
from karmma_edge.data.sampling import flow_frames_for
from karmma_edge.errors import DataError
from karmma_edge.inputs import InputSpec


@dataclass
class Problem:
    where: str
    reason: str
    segments: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    root: Path
    splits: list[str] = field(default_factory=list)
    segments: int = 0
    problems: dict[str, Problem] = field(default_factory=dict)

    def add(self, where: str, reason: str, segment: str) -> None:
        p = self.problems.setdefault(where, Problem(where, reason))
        if segment and segment not in p.segments:
            p.segments.append(segment)

    def lines(self) -> list[str]:
        out = []
        for p in self.problems.values():
            segs = ", ".join(p.segments[:8]) + (f" (+{len(p.segments) - 8} more)" if len(p.segments) > 8 else "")
            out.append(f"{p.where}: {p.reason}" + (f" -- needed by segment(s) {segs}" if segs else ""))
        return out


def check_dataset(root: Path, fmt: str = "epic100", decode: bool = False, progress: bool = False) -> CheckReport:
    """Walk every segment of every split and test each file it may read (any training-mode frame)."""
    if fmt == "ssv2":
        return check_ssv2(Path(root), decode=decode)
    if fmt != "epic100":
        raise DataError(f"unknown dataset format {fmt!r}; valid formats: epic100, ssv2")
    from karmma_edge.data import epic_csv as ann
    from karmma_edge.data.epic100 import Epic100Dataset

    root = Path(root)
    report = CheckReport(root)
    spec = InputSpec()
    datasets = []
    for split, name in ann.SPLIT_FILES.items():
        if (root / name).is_file() or split not in ann.OPTIONAL_SPLITS:
            try:
                datasets.append(Epic100Dataset(root, split, spec))   # raises on a bad CSV / missing class file
            except DataError as exc:
                report.add(str(root / name), str(exc).split(": ", 1)[-1], "")
    seen: dict[tuple, tuple[str, str] | None] = {}
    total = sum(len(ds) for ds in datasets)
    bar = _bar(progress, total)
    for ds in datasets:
        report.splits.append(ds.split)
        report.segments += len(ds)
        for seg in ds.segments:
            _check_segment(ds, seg, decode, seen, report)
            if bar:
                bar[0].advance(bar[1])
    if bar:
        bar[0].stop()
    return report


def check_ssv2(root: Path, decode: bool = False) -> CheckReport:
    """Every video a split names is there (and, with `decode`, decodes)."""
    from karmma_edge.data.ssv2 import SPLIT_FILES, SSv2Dataset

    report = CheckReport(root)
    for split in SPLIT_FILES:
        try:
            ds = SSv2Dataset(root, split, InputSpec())
        except DataError as exc:
            report.add(str(root / SPLIT_FILES[split]), str(exc).split(": ", 1)[-1], "")
            continue
        report.splits.append(split)
        report.segments += len(ds)
        for seg in ds.segments:
            path = ds.video_path(seg.id)
            if not path.is_file():
                report.add(str(path), "file not found", seg.id)
            elif decode:
                try:
                    ds.decode(seg.id)
                except MissingData as exc:
                    report.add(exc.path, exc.reason, seg.id)
    return report


def _check_segment(ds, seg, decode: bool, seen: dict, report: CheckReport) -> None:
    pid, vid = seg.participant_id, seg.video_id
    rgb = np.arange(seg.start_frame, seg.stop_frame + 1)
    needs: list[tuple[str, str]] = []
    if "rgb" in ds.modalities:
        needs += [("rgb", frame_name(int(f))) for f in rgb]
    if "flow" in ds.modalities:
        for f in np.unique(flow_frames_for(rgb, vid)):
            needs += [("flow", f"u/{frame_name(int(f))}"), ("flow", f"v/{frame_name(int(f))}")]
    for kind, member in needs:
        key = (pid, vid, kind, member)
        if key not in seen:
            seen[key] = ds.frames.problem(pid, vid, kind, member, decode)
        if seen[key] is not None:
            report.add(*seen[key], seg.id)
    if "audio" in ds.modalities:
        key = ("audio", pid, vid)
        if key not in seen:
            seen[key] = None
            try:
                ds.audio.rate(pid, vid)
            except MissingData as exc:
                seen[key] = (exc.path, exc.reason)
        if seen[key] is not None:
            report.add(*seen[key], seg.id)
        if vid not in ds.fps:
            report.add(str(ds.root / "EPIC_100_video_info.csv"), f"no fps for video {vid}", seg.id)


def _bar(progress: bool, total: int):
    if not progress:
        return None
    from rich.progress import Progress
    p = Progress(transient=True)
    p.start()
    return p, p.add_task("check", total=total)
