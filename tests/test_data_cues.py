"""The synthetic data's per-clip cues (issue 15): drawn at the preset's shares, independently of the
class, written to the CSV, visible in the pixels and the sound, and the ceilings they imply."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from karmma_edge.data.synth.ceilings import ceilings, kept_at_half
from karmma_edge.data.synth.plan import classes, plan_split
from karmma_edge.data.synth.presets import get_preset
from karmma_edge.data.synth.render import VideoRenderer
from karmma_edge.data.synth.sound import render_audio


def test_cues_are_drawn_at_the_presets_shares_independently_of_the_class() -> None:
    p = get_preset("demo")
    segs = [s for v in plan_split(p, "pretrain", 0) for s in v.segments]
    n = len(segs)
    for flag, share in (("material_seen", p.rgb_material), ("material_moves", p.motion_material),
                        ("verb_heard", p.audio_verb)):
        seen = np.array([getattr(s, flag) for s in segs])
        # 4 binomial standard deviations: a share drawn from the wrong probability fails.
        assert abs(seen.mean() - share) < 4 * np.sqrt(share * (1 - share) / n), flag
        for noun in range(p.n_nouns):       # not tied to the class
            sub = seen[[s.noun == noun for s in segs]]
            assert abs(sub.mean() - share) < 5 * np.sqrt(share * (1 - share) / len(sub)), (flag, noun)


def test_cue_flags_land_in_the_csv(tiny_dataset: Path) -> None:
    rows = list(csv.DictReader((tiny_dataset / "EPIC_100_train.csv").open()))
    for col in ("material_seen", "material_moves", "verb_heard"):
        assert {r[col] for r in rows} <= {"0", "1"} and len({r[col] for r in rows}) == 2, col


def _clip_pixels(p, seg_update: dict) -> np.ndarray:
    verbs, nouns = classes(p)
    video = plan_split(p, "train", 0)[0]
    seg = video.segments[0]
    for k, v in seg_update.items():
        setattr(seg, k, v)
    seg.degradation = "none"
    r = VideoRenderer(video, nouns, verbs, p.width, p.height, np.random.default_rng(3))
    return np.stack([r.frame(seg.start_frame + k).astype(np.int16) for k in range(seg.frames)])


def test_material_cues_change_the_pixels_only_where_drawn() -> None:
    p = get_preset("tiny")
    plain = _clip_pixels(p, {"material_seen": False, "material_moves": False})
    textured = _clip_pixels(p, {"material_seen": True, "material_moves": False})
    moved = _clip_pixels(p, {"material_seen": False, "material_moves": True})
    # Texture: same motion, different surface (a small area: the object only).
    changed = np.abs(textured - plain).max(axis=-1) > 30
    assert 0 < changed.mean() < 0.2
    # Vigour: the object ends somewhere else (metal and wood scale the motion by 0.6 and 1.5).
    assert np.abs(moved[-1] - plain[-1]).max() > 60 and np.array_equal(moved[0] != 0, plain[0] != 0)


def test_verb_heard_doubles_the_strikes_of_the_second_verb_of_a_pair_only() -> None:
    p = get_preset("tiny")
    verbs, nouns = classes(p)
    assert [v.second_of_pair for v in verbs] == [False, True, False]

    def audio(verb: int, heard: bool) -> np.ndarray:
        video = plan_split(p, "train", 0)[0]
        video.segments = [replace(video.segments[0], verb=verb, verb_heard=heard, snr_db=60.0)]
        return render_audio(video, verbs, nouns, np.random.default_rng(5)).astype(np.float64)

    # put: a second strike at 0.7 of the first's amplitude adds about half the energy.
    assert np.sum(audio(1, True) ** 2) > 1.25 * np.sum(audio(1, False) ** 2)
    assert np.array_equal(audio(0, True), audio(0, False))      # take: the same samples


def test_ceilings_follow_from_the_cue_shares() -> None:
    p = get_preset("demo")
    c = ceilings(p)
    assert c["rgb+flow+audio"] == c["rgb+audio"] == c["flow+audio"] == 100.0
    material_rgb = 1 - (1 - p.rgb_material) * (1 - p.motion_material) / 2
    assert c["rgb"] == pytest.approx(100 * material_rgb) == pytest.approx(c["rgb+flow"])
    assert c["flow"] == pytest.approx(100 * (0.5 + p.motion_material / 2))
    assert c["audio"] == pytest.approx(100 * (0.5 + p.audio_verb / 2) / p.n_shapes)
    # With no cues at all rgb can only guess the material, and audio only its rhythm pair.
    bare = ceilings(replace(p, rgb_material=0.0, motion_material=0.0, audio_verb=0.0))
    assert bare["rgb"] == pytest.approx(50.0) and bare["audio"] == pytest.approx(100 / 6)
    assert kept_at_half(bare) < kept_at_half(c) < 1.0
