"""Write the synthetic benchmark to disk in EPIC-100 layout, deterministically, atomically."""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from karmma_edge.atomic import atomic_directory
from karmma_edge.data import epic_csv as ann
from karmma_edge.data.flow import EPIC_BOUND_PX, write_flow_file
from karmma_edge.data.synth.plan import SPLIT_CODES, Noun, Verb, VideoPlan, classes, plan_split
from karmma_edge.data.synth.presets import Preset, get_preset
from karmma_edge.data.synth.sound import SAMPLE_RATE
from karmma_edge.errors import DataError
from karmma_edge.inputs import FlowEncoding

MARKER = "KARMMA_synth.json"
FORMAT_VERSION = 4                # 2: per-clip cues (material in rgb and motion, verb in sound), test split;
                                  # 3: flow without the camera's motion, at full resolution; disc, bar, wedge;
                                  # 4: KARMMA_flow.json (same frames and sound: without it the device's flow
                                  # would fall back to the model's size)


def read_marker(root: Path) -> dict | None:
    """What `synthesize` recorded about the dataset at `root` (preset, seed, format_version, ...);
    None when `root` holds no synthetic dataset."""
    marker = Path(root) / MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


def synthesize(out: Path, preset: str = "tiny", seed: int = 0, progress: bool = True,
               workers: int | None = None, force: bool = False, layout: str = "folders",
               fmt: str = "epic100") -> Path:
    """Render every split into a temporary directory beside `out`, then rename it to `out`.

    `fmt` "ssv2" writes Something-Something v2's layout instead (one .webm and one label per clip).

    A failed or interrupted run leaves `out` untouched. `force` replaces an existing synthetic
    dataset (recognised by its KARMMA_synth.json), never any other directory.
    """
    p = get_preset(preset)
    if layout not in ("folders", "tar"):
        raise DataError(f"unknown layout {layout!r}; valid layouts: folders, tar")
    if fmt not in ("epic100", "ssv2"):
        raise DataError(f"unknown format {fmt!r}; valid formats: epic100, ssv2")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not (force and (out / MARKER).is_file()):
            raise DataError(f"{out}: already exists and is not empty; choose another --out, or delete it "
                            "(--force replaces a previous synthetic dataset)")
    # The old dataset is renamed aside only once the new one is complete, and deleted after.
    with atomic_directory(out) as tmp:
        if fmt == "ssv2":
            from karmma_edge.data.synth.ssv2 import write_ssv2

            summary = write_ssv2(tmp, p, seed)
            (tmp / MARKER).write_text(json.dumps({"generator": "karmma-edge data synth", "format": "ssv2",
                                                  "format_version": FORMAT_VERSION, "preset": p.name,
                                                  "seed": seed, "frame_size": [p.width, p.height],
                                                  **summary}, indent=2) + "\n")
            write_flow_file(tmp, FlowEncoding(EPIC_BOUND_PX, p.height, p.width))
        else:
            _write_all(tmp, p, seed, progress, workers, layout)
    return out


def _write_all(root: Path, p: Preset, seed: int, progress: bool, workers: int | None, layout: str) -> None:
    verbs, nouns = classes(p)
    plans = {split: plan_split(p, split, seed) for split in SPLIT_CODES}
    _write_classes(root, verbs, nouns)
    videos = [v for split in SPLIT_CODES for v in plans[split]]
    audio = _render_videos(root, videos, p, verbs, nouns, seed, progress, workers, layout)
    _write_audio(root / "EPIC_audio.hdf5", videos, audio)
    _write_video_info(root / ann.VIDEO_INFO, videos, p)
    for split, vids in plans.items():
        _write_split(root / ann.SPLIT_FILES[split], vids, verbs, nouns)
    meta = {
        "generator": "karmma-edge data synth", "format_version": FORMAT_VERSION,
        "preset": p.name, "seed": seed, "layout": layout, "frame_size": [p.width, p.height],
        "audio_sample_rate": SAMPLE_RATE,
        "verbs": [{"id": i, "key": v.name, "motion": v.motion, "rhythm_hz": v.rhythm_hz,
                   "second_of_pair": v.second_of_pair} for i, v in enumerate(verbs)],
        "cues": {"rgb_material": p.rgb_material, "motion_material": p.motion_material, "audio_verb": p.audio_verb},
        "nouns": [{"id": i, "key": n.name, "shape": n.shape, "material": n.material} for i, n in enumerate(nouns)],
        "splits": {s: {"videos": len(v), "segments": sum(len(x.segments) for x in v),
                       "csv": ann.SPLIT_FILES[s]} for s, v in plans.items()},
    }
    (root / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
    write_flow_file(root, FlowEncoding(p.flow_bound, p.height, p.width))


def _render_videos(root: Path, videos: list[VideoPlan], p: Preset, verbs: list[Verb], nouns: list[Noun],
                   seed: int, progress: bool, workers: int | None, layout: str) -> dict[str, np.ndarray]:
    from karmma_edge.data.synth.video import render_video

    jobs = [(root, v, p, verbs, nouns, seed, layout) for v in videos]
    total_frames = sum(v.n_frames for v in videos)
    if workers is None:   # a pool costs ~0.2 s to start: not worth it for the tiny preset
        workers = 1 if total_frames < 3000 else min(4, os.cpu_count() or 1)
    audio: dict[str, np.ndarray] = {}
    bar = _Progress(progress, len(videos), f"synth {p.name}")
    with bar:
        if workers <= 1:
            for job in jobs:
                vid, a = render_video(*job)
                audio[vid] = a
                bar.advance()
        else:
            # Each video seeds its own RNG from (seed, split, index), so the output does not depend
            # on which worker renders it or in which order they finish.
            # spawn, not fork: a caller that already runs OpenCV or ONNX Runtime threads (a test
            # session, the demo) deadlocked its forked children on a lock held by one of them.
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                for vid, a in pool.map(render_video, *zip(*jobs), chunksize=2):
                    audio[vid] = a
                    bar.advance()
    return audio


class _Progress:
    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._p = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import Progress
            self._p = Progress(transient=False)
            self._p.__enter__()
            self._task = self._p.add_task(self.label, total=self.total)
        return self

    def advance(self) -> None:
        if self._p is not None:
            self._p.advance(self._task)

    def __exit__(self, *exc) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)


def _write_audio(path: Path, videos: list[VideoPlan], audio: dict[str, np.ndarray]) -> None:
    import h5py

    # track_times=False and a fixed creation order keep the file byte-identical across runs.
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["sample_rate"] = SAMPLE_RATE
        for v in sorted(videos, key=lambda v: v.video_id):
            ds = f.create_dataset(v.video_id, data=audio[v.video_id], dtype="float32", track_times=False)
            ds.attrs["sample_rate"] = SAMPLE_RATE


def _write_classes(root: Path, verbs: list[Verb], nouns: list[Noun]) -> None:
    for name, items, cat in ((ann.VERB_CLASSES, [v.name for v in verbs], "motion"),
                             (ann.NOUN_CLASSES, [n.name for n in nouns], "object")):
        with (root / name).open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["id", "key", "instances", "category"])
            for i, key in enumerate(items):
                w.writerow([i, key, f"['{key}']", cat])


def _write_video_info(path: Path, videos: list[VideoPlan], p: Preset) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["video_id", "duration", "fps", "resolution"])
        for v in sorted(videos, key=lambda v: v.video_id):
            w.writerow([v.video_id, f"{v.n_frames / v.fps:.3f}", f"{v.fps:g}", f"{p.width}x{p.height}"])


def _ts(seconds: float) -> str:
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:05.2f}"


EXTRA_COLUMNS = ("degradation", "strength", "snr_db", "shape", "material",
                 "material_seen", "material_moves", "verb_heard")


def _write_split(path: Path, videos: list[VideoPlan], verbs: list[Verb], nouns: list[Noun]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(list(ann.EPIC_COLUMNS) + list(EXTRA_COLUMNS))
        for v in videos:
            for k, s in enumerate(v.segments):
                stop = s.start_frame + s.frames - 1
                verb, noun = verbs[s.verb], nouns[s.noun]
                w.writerow([
                    f"{v.video_id}_{k}", v.participant_id, v.video_id, _ts((s.start_frame - 1) / v.fps),
                    _ts((s.start_frame - 1) / v.fps), _ts(stop / v.fps), s.start_frame, stop,
                    f"{verb.name} {noun.name}", verb.name, s.verb, noun.name, s.noun,
                    f"['{noun.name}']", f"[{s.noun}]",
                    s.degradation, f"{s.strength:g}", f"{s.snr_db:g}", noun.shape, noun.material,
                    int(s.material_seen), int(s.material_moves), int(s.verb_heard),
                ])
