"""Sizes of the synthetic benchmark: tiny (tests), demo (trains in minutes on CPU), full, and scale
(20,000 small training clips, to measure the input pipeline on)."""

from __future__ import annotations

from dataclasses import dataclass

from karmma_edge.errors import DataError

# (name, motion, rhythm group): two verbs share each rhythm, so audio alone confuses them.
VERBS: tuple[tuple[str, str, int], ...] = (
    ("take", "up", 0), ("put", "down", 0),
    ("open", "rot_cw", 1), ("close", "rot_ccw", 1),
    ("wash", "shake_x", 2), ("mix", "circle", 2),
    ("cut", "shake_y", 3), ("pour", "tilt", 3),
)
# Strike rate (hits per second) of each rhythm group.
RHYTHM_HZ: tuple[float, ...] = (2.5, 4.5, 7.0, 10.5)
# The demo's three (disc, bar, wedge) differ in outline enough to survive in the flow's soft
# silhouette; with a box in place of the bar a flow probe read the action at 31 % instead of 39 %.
SHAPES: tuple[str, ...] = ("disc", "bar", "wedge", "box")
MATERIALS: tuple[str, ...] = ("metal", "wood", "glass", "plastic")
# How vigorously each material is handled (scales the verb's motion) on clips whose motion shows the
# material: heavy metal moves little, light wood a lot. 1.0 on every other clip. The ranges this gives
# with the clip's own amplitude (x 0.92..1.08) do not overlap, so the cue is unambiguous when present.
MATERIAL_VIGOR: dict[str, float] = {"metal": 0.6, "glass": 0.8, "plastic": 1.25, "wood": 1.5}


@dataclass(frozen=True)
class Preset:
    name: str
    n_verbs: int
    n_shapes: int
    n_materials: int
    train_per_class: int
    val_per_class: int
    pretrain_per_class: int
    test_per_class: int
    width: int
    height: int
    seg_frames: tuple[int, int]       # frames per segment, inclusive range
    segs_per_video: int
    visual_degraded: float = 0.45     # fraction of clips with a visual degradation
    audio_degraded: float = 0.35      # fraction of clips with loud background noise
    flow_bound: float = 8.0           # pixels mapped to 0 / 255 in the flow JPEGs
    # Cues present on a share of clips (drawn per clip, independently of the class): how the
    # modalities share information, set so each subset's ceiling resembles EPIC-KITCHENS-100's
    # (data/synth/ceilings.py computes them; karmma_edge/data/README.md has the table).
    rgb_material: float = 0.75        # the object's surface shows its material (texture, highlight)
    motion_material: float = 0.35     # the handling shows the material (vigour: rgb and flow see it)
    audio_verb: float = 0.4           # the sound tells apart the two verbs sharing a rhythm
    jpeg_quality: int = 90

    @property
    def n_nouns(self) -> int:
        return self.n_shapes * self.n_materials

    @property
    def n_classes(self) -> int:
        return self.n_verbs * self.n_nouns


PRESETS: dict[str, Preset] = {
    # 3 verbs x 4 nouns = 12 actions: 48 train / 24 validation / 72 pretrain / 24 test clips, 64x64.
    "tiny": Preset("tiny", 3, 2, 2, 4, 2, 6, 2, 64, 64, (12, 18), 6),
    # 6 verbs x 6 nouns = 36 actions: 792 train / 252 validation / 1512 pretrain / 252 test clips, 96x96.
    "demo": Preset("demo", 6, 3, 2, 22, 7, 42, 7, 96, 96, (16, 26), 12),
    # 8 verbs x 9 nouns = 72 actions: 4320 / 1440 / 8640 / 1440 clips, 128x128.
    "full": Preset("full", 8, 3, 3, 60, 20, 120, 20, 128, 128, (24, 40), 16),
    # The input pipeline's measure, not a benchmark: 3 x 4 actions, 20,004 train / 48 validation /
    # 12 pretrain clips of 32x32 and 6 to 8 frames, fast to write (use --layout tar).
    "scale": Preset("scale", 3, 2, 2, 1667, 4, 1, 4, 32, 32, (6, 8), 60),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise DataError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}") from None
