"""Something-Something v2 reader: labels.json / train.json / validation.json and `<id>.webm` videos.

Each video is one segment covering all its frames. The class is the template with its brackets
stripped; SSv2 has one action label per clip, so `verb_class` holds it, `noun_class` is -1 and
`noun_classes` is empty. There is no audio. Flow is computed with OpenCV (DIS) on first use and
cached, EPIC-encoded, in `<cache>/<id>.npz` (default `<root>/.karmma_flow2/`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from karmma_edge.atomic import atomic_file
from karmma_edge.data.flow import EPIC_BOUND_PX, encode_flow, flow_engine, read_flow_file, scene_flow
from karmma_edge.data.frames import MissingData, resize
from karmma_edge.data.reader import SegmentReader
from karmma_edge.data.sampling import clip_frames, flow_stacks
from karmma_edge.data.types import Clip, Segment
from karmma_edge.errors import DataError
from karmma_edge.file_formats import read_json
from karmma_edge.inputs import FlowEncoding, InputSpec

SPLIT_FILES = {"train": "train.json", "validation": "validation.json"}
VIDEO_DIRS = ("", "20bn-something-something-v2", "videos")
VIDEO_HEIGHT = 240   # every SSv2 video's; widths vary (the flow is computed at the video's own size)


def _load_json(path: Path):
    return read_json(path, "restore the file from the SSv2 download", DataError,
                     missing_fix="an SSv2 root needs labels.json, train.json and validation.json")


def template_key(template: str) -> str:
    return template.replace("[", "").replace("]", "")


class SSv2Dataset(SegmentReader):
    segment_noun = "video"
    missing_fix = "restore the video or run `karmma-edge data check --format ssv2 --root {root}`"

    def __init__(self, root: Path, split: str, spec: InputSpec, flow_cache: Path | None = None) -> None:
        self.root = Path(root)
        if split not in SPLIT_FILES:
            raise DataError(f"unknown split {split!r} for SSv2; valid splits: {', '.join(SPLIT_FILES)}")
        self.split, self.spec = split, spec
        self.csv_path = self.root / SPLIT_FILES[split]      # named like the EPIC reader's, for messages
        labels = _load_json(self.root / "labels.json")
        by_id = {int(v): k for k, v in labels.items()}
        if sorted(by_id) != list(range(len(by_id))):
            raise DataError(f"{self.root / 'labels.json'}: class ids must be 0..{len(by_id) - 1} without gaps")
        self.verb_classes: list[str] = [by_id[i] for i in range(len(by_id))]
        self.noun_classes: list[str] = []
        self.modalities: tuple[str, ...] = ("rgb", "flow")
        self.flow_encoding = read_flow_file(self.root) or FlowEncoding(EPIC_BOUND_PX, VIDEO_HEIGHT)
        self.flow_cache = Path(flow_cache) if flow_cache else self.root / ".karmma_flow2"   # 2: camera motion removed
        self.segments: list[Segment] = []
        for entry in _load_json(self.csv_path):
            sid = str(entry.get("id", ""))
            key = template_key(str(entry.get("template", "")))
            if not sid or key not in labels:
                raise DataError(f"{self.csv_path}: segment {sid or '?'}: template {entry.get('template')!r} "
                                "is not in labels.json; use the labels.json of the same SSv2 release")
            n = self._frame_count(sid)
            self.segments.append(Segment(id=sid, video_id=sid, participant_id="", start_frame=1, stop_frame=n,
                                         verb_class=int(labels[key]), noun_class=-1,
                                         extra={"label": entry.get("label", ""), "placeholders": entry.get("placeholders", [])}))
        self._index_segments()
        self._frames_cache: tuple[str, np.ndarray] | None = None

    def video_path(self, sid: str) -> Path:
        for d in VIDEO_DIRS:
            p = self.root / d / f"{sid}.webm"
            if p.is_file():
                return p
        return self.root / f"{sid}.webm"

    def _frame_count(self, sid: str) -> int:
        # The container's frame count is unreliable for webm; it is only a placeholder here and
        # the decoded count replaces it on load. Missing videos surface on load / in `data check`.
        cap = cv2.VideoCapture(str(self.video_path(sid)))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        return max(n, 1)

    def decode(self, sid: str) -> np.ndarray:
        """All frames of a video, RGB uint8 [N,H,W,3]."""
        if self._frames_cache and self._frames_cache[0] == sid:
            return self._frames_cache[1]
        path = self.video_path(sid)
        if not path.is_file():
            raise MissingData(str(path), "file not found")
        cap = cv2.VideoCapture(str(path))
        frames = []
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        cap.release()
        if not frames:
            raise MissingData(str(path), "OpenCV decodes no frame from it (corrupt, or no VP8/VP9 decoder)")
        arr = np.stack(frames)
        self._frames_cache = (sid, arr)
        return arr

    def flow(self, sid: str) -> np.ndarray:
        """EPIC-encoded flow uint8 [N-1,H,W,2] between consecutive frames, cached on disk."""
        cache = self.flow_cache / f"{sid}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                return z["uv"]
        frames = self.decode(sid)
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        dis = flow_engine(*gray[0].shape)
        uv = np.empty((max(1, len(gray) - 1), *gray[0].shape, 2), np.uint8)
        if len(gray) == 1:
            uv[:] = 128
        for k in range(len(gray) - 1):
            u, v = encode_flow(scene_flow(dis, gray[k], gray[k + 1]), EPIC_BOUND_PX)
            uv[k, ..., 0], uv[k, ..., 1] = u, v
        with atomic_file(cache, suffix=".npz") as tmp:   # parallel workers never see half a cache file
            np.savez(tmp, uv=uv)
        return uv

    def _load(self, seg: Segment, train: bool, rng: np.random.Generator | None) -> Clip:
        frames = self.decode(seg.id)
        n = frames.shape[0]
        spec, want = self.spec, self.wanted()
        rgb_frames = clip_frames(1, n, spec, train, rng)
        # Flow k is from frame k to k+1; the last frame has none, so it takes the one before it.
        flow_frames = np.minimum(rgb_frames, max(1, n - 1))
        inputs: dict[str, np.ndarray] = {}
        if "rgb" in want:
            inputs["rgb"] = np.stack([resize(frames[f - 1], spec.height, spec.width) for f in rgb_frames])
        if "flow" in want:
            uv = self.flow(seg.id)
            stacks = flow_stacks(flow_frames, spec.flow_stack, len(uv))
            inputs["flow"] = np.stack([np.concatenate([resize(uv[f - 1], spec.height, spec.width) for f in stack], axis=-1)
                                       for stack in stacks])
        return Clip(inputs=inputs, verb_class=seg.verb_class, noun_class=-1, rgb_frames=rgb_frames,
                    flow_frames=flow_frames, audio_range=(0, 0), segment_id=seg.id)
