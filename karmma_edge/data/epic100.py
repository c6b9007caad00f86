"""EPIC-KITCHENS-100 layout reader: segments from the CSVs, clips from frames, flow and audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from karmma_edge.data import epic_csv as ann
from karmma_edge.data.audio import AudioStore
from karmma_edge.data.flow import read_flow_file
from karmma_edge.data.frames import FrameStore, MissingData, resize
from karmma_edge.data.reader import SegmentReader
from karmma_edge.data.sampling import audio_window, clip_frames, flow_frames_for, flow_stacks
from karmma_edge.data.types import Clip, Segment
from karmma_edge.errors import DataError
from karmma_edge.inputs import InputSpec
from karmma_edge.profiles import MODALITIES


class Epic100Dataset(SegmentReader):
    """Indexable segments of one split; `load` returns the arrays a model gets for a segment."""

    unknown_id_fix = "; check the narration_id"

    def __init__(self, root: Path, split: str, spec: InputSpec, audio_rate: int | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset root not found; pass --root of an EPIC-100 tree "
                            "(or make one with `karmma-edge data synth`)")
        if split not in ann.SPLIT_FILES:
            raise DataError(f"unknown split {split!r}; valid splits: {', '.join(ann.SPLIT_FILES)}")
        self.split = split
        self.spec = spec
        self.csv_path = self.root / ann.SPLIT_FILES[split]
        self.segments: list[Segment] = ann.read_segments(self.csv_path)
        self.verb_classes: list[str] = ann.read_classes(self.root / ann.VERB_CLASSES)
        self.noun_classes: list[str] = ann.read_classes(self.root / ann.NOUN_CLASSES)
        self.fps: dict[str, float] = ann.read_video_fps(self.root / ann.VIDEO_INFO)
        self._index_segments()
        self.frames = FrameStore(self.root)
        self.audio = AudioStore(self.root, audio_rate)
        self.modalities: tuple[str, ...] = self._held_modalities()
        # KARMMA_flow.json: the synthetic data writes it; a real EPIC tree has it where its user
        # wrote it, else the device falls back to its config (`flow.bound_px`, the model's size).
        self.flow_encoding = read_flow_file(self.root)

    def _held_modalities(self) -> tuple[str, ...]:
        held = set()
        videos = {(s.participant_id, s.video_id) for s in self.segments}
        for kind in ("rgb", "flow"):
            if any(self.frames.has(pid, vid, kind) for pid, vid in videos):
                held.add(kind)
        if self.audio.available():
            held.add("audio")
        return tuple(m for m in MODALITIES if m in held)

    def _load(self, seg: Segment, train: bool, rng: np.random.Generator | None) -> Clip:
        spec = self.spec
        want = self.wanted()
        rgb_frames = clip_frames(seg.start_frame, seg.stop_frame, spec, train, rng)
        flow_frames = flow_frames_for(rgb_frames, seg.video_id)
        inputs: dict[str, np.ndarray] = {}
        pid, vid = seg.participant_id, seg.video_id
        if "rgb" in want:
            out = np.empty((spec.frames, spec.height, spec.width, 3), np.uint8)
            for t, f in enumerate(rgb_frames):
                out[t] = resize(self.frames.rgb(pid, vid, int(f)), spec.height, spec.width)
            inputs["rgb"] = out
        if "flow" in want:
            out = np.empty((spec.frames, spec.height, spec.width, 2 * spec.flow_stack), np.uint8)
            cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # EPIC-55 stride 2 repeats flow frames
            # A stack of L pairs reads the L flow frames from each sampled one, within the segment.
            last = int(flow_frames_for(np.array([seg.stop_frame]), vid)[0])
            for t, stack in enumerate(flow_stacks(flow_frames, spec.flow_stack, last)):
                for k, f in enumerate(stack.tolist()):
                    if f not in cache:
                        u, v = self.frames.flow(pid, vid, f)
                        cache[f] = (resize(u, spec.height, spec.width), resize(v, spec.height, spec.width))
                    out[t, ..., 2 * k], out[t, ..., 2 * k + 1] = cache[f]
            inputs["flow"] = out
        audio_range = (0, 0)
        if "audio" in want:
            inputs["audio"], audio_range = self._audio(seg)
        return Clip(inputs=inputs, verb_class=seg.verb_class, noun_class=seg.noun_class,
                    rgb_frames=rgb_frames, flow_frames=flow_frames, audio_range=audio_range,
                    segment_id=seg.id)

    def _audio(self, seg: Segment) -> tuple[np.ndarray, tuple[int, int]]:
        fps = self.fps.get(seg.video_id)
        if fps is None:
            raise MissingData(str(self.root / ann.VIDEO_INFO), f"no fps for video {seg.video_id}")
        rate = self.audio.rate(seg.participant_id, seg.video_id)
        # Window in the file's own rate, then resampled to the spec's rate (same duration).
        n_file = int(round(self.spec.audio_seconds * rate))
        first, last = audio_window(seg.start_frame, seg.stop_frame, fps, rate, n_file)
        x = self.audio.window(seg.participant_id, seg.video_id, first, last)
        if rate != self.spec.sample_rate:
            from karmma_edge.data.audio import resample
            x = resample(x, self.spec.audio_samples)
        return x, (first, last)
