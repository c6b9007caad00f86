"""What to render: classes, and for each split its videos and their segments (all drawn from the seed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from karmma_edge.data.synth.presets import MATERIALS, RHYTHM_HZ, SHAPES, VERBS, Preset

SPLIT_CODES = {"train": 1, "validation": 2, "pretrain": 3, "test": 4}
VISUAL_DEGRADATIONS = ("blur", "low_light", "occlusion", "shake")
PALETTE = (  # object colours (RGB): random per clip, so colour carries no class information
    (200, 40, 40), (40, 160, 60), (50, 80, 200), (220, 180, 40),
    (150, 60, 170), (40, 170, 170), (230, 120, 30), (120, 120, 120),
)


@dataclass(frozen=True)
class Noun:
    name: str
    shape: str
    material: str


@dataclass(frozen=True)
class Verb:
    name: str
    motion: str
    rhythm_hz: float
    second_of_pair: bool               # the sound tells it from its rhythm partner on `verb_heard` clips


@dataclass
class SegmentPlan:
    verb: int
    noun: int
    frames: int
    start_frame: int = 0               # filled in when the video is laid out
    degradation: str = "none"
    strength: float = 0.0
    snr_db: float = 30.0
    colour: int = 0
    material_seen: bool = False        # surface texture shows the material (rgb)
    material_moves: bool = False       # the handling's vigour shows the material (rgb and flow)
    verb_heard: bool = False           # double strikes tell a verb from its rhythm partner (audio)


@dataclass
class VideoPlan:
    split: str
    participant_id: str
    video_id: str
    fps: float
    index: int                          # position within the split, seeds the video's RNG
    segments: list[SegmentPlan] = field(default_factory=list)
    n_frames: int = 0


def classes(p: Preset) -> tuple[list[Verb], list[Noun]]:
    verbs = [Verb(n, m, RHYTHM_HZ[g], i % 2 == 1) for i, (n, m, g) in enumerate(VERBS[: p.n_verbs])]
    # noun = shape x material: nouns sharing a shape differ in material and vice versa.
    nouns = [Noun(f"{s}:{m}", s, m) for s in SHAPES[: p.n_shapes] for m in MATERIALS[: p.n_materials]]
    return verbs, nouns


def _per_class(p: Preset, split: str) -> int:
    return {"train": p.train_per_class, "validation": p.val_per_class, "pretrain": p.pretrain_per_class,
            "test": p.test_per_class}[split]


def plan_split(p: Preset, split: str, seed: int) -> list[VideoPlan]:
    """Balanced classes, shuffled into videos; EPIC-55 (PXX_YY, 30 fps) and extension (PXX_1YY, 25 fps) ids alternate."""
    rng = np.random.default_rng([seed, SPLIT_CODES[split], 0])
    pairs = [(v, n) for v in range(p.n_verbs) for n in range(p.n_nouns)] * _per_class(p, split)
    order = rng.permutation(len(pairs))
    segs: list[SegmentPlan] = []
    for k in order:
        v, n = pairs[k]
        s = SegmentPlan(verb=v, noun=n, frames=int(rng.integers(p.seg_frames[0], p.seg_frames[1] + 1)))
        if rng.random() < p.visual_degraded:
            s.degradation = VISUAL_DEGRADATIONS[int(rng.integers(len(VISUAL_DEGRADATIONS)))]
            s.strength = round(float(rng.uniform(0.3, 1.0)), 3)
        # Background noise on every clip; loud (low SNR) on a fraction of them.
        s.snr_db = round(float(rng.uniform(-6.0, 6.0) if rng.random() < p.audio_degraded else rng.uniform(12.0, 30.0)), 2)
        s.colour = int(rng.integers(len(PALETTE)))
        cues = rng.random(3)
        s.material_seen = bool(cues[0] < p.rgb_material)
        s.material_moves = bool(cues[1] < p.motion_material)
        s.verb_heard = bool(cues[2] < p.audio_verb)
        segs.append(s)
    # Each split has its own participants (validation and test: unseen kitchens), so videos never overlap;
    # at most ~90 videos per participant keeps ids in the PXX_YY / PXX_1YY forms.
    first_pid = {"train": 1, "validation": 31, "test": 46, "pretrain": 61}[split]
    n_videos = -(-len(segs) // p.segs_per_video)
    n_pids = max(4 if split != "pretrain" else 6, -(-n_videos // 90))
    videos: list[VideoPlan] = []
    counters: dict[str, int] = {}
    for i in range(0, len(segs), p.segs_per_video):
        pid = f"P{first_pid + (len(videos) % n_pids):02d}"
        c = counters.get(pid, 0) + 1
        counters[pid] = c
        if c % 2 == 1:
            vid, fps = f"{pid}_{c:02d}", 30.0        # EPIC-55 style: flow stride 2
        else:
            vid, fps = f"{pid}_1{c:02d}", 25.0       # extension style: flow stride 1
        video = VideoPlan(split, pid, vid, fps, len(videos), segs[i:i + p.segs_per_video])
        _layout(video, rng)
        videos.append(video)
    return videos


def _layout(video: VideoPlan, rng: np.random.Generator) -> None:
    """Frame numbers: a lead-in, segments separated by idle gaps, and a tail so every flow frame exists."""
    f = 1 + int(rng.integers(4, 9))
    for s in video.segments:
        s.start_frame = f
        f += s.frames + int(rng.integers(4, 10))
    video.n_frames = f + 6
