"""Phase-1 contract of karmma_edge.data: shapes, dtypes, sampling rule, determinism, no torch."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from karmma_edge.data import open_dataset, synthesize
from karmma_edge.data.sampling import audio_window, flow_frames_for, sample_frames
from karmma_edge.errors import DataError
from karmma_edge.inputs import InputSpec

SPEC = InputSpec(frames=8, height=32, width=40)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_import_does_not_load_torch() -> None:
    code = ("import sys, karmma_edge.data, karmma_edge.data.epic100, karmma_edge.data.synth.generate, "
            "karmma_edge.data.commands, karmma_edge.data.ssv2, karmma_edge.data.check, karmma_edge.data.inspect, karmma_edge.data.tars; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_splits_classes_and_modalities(tiny_dataset: Path) -> None:
    train = open_dataset(tiny_dataset, "train", SPEC)
    val = open_dataset(tiny_dataset, "validation", SPEC)
    pre = open_dataset(tiny_dataset, "pretrain", SPEC)
    assert train.modalities == ("rgb", "flow", "audio")
    n_actions = len(train.verb_classes) * len(train.noun_classes)
    actions = lambda ds: [(s.verb_class, s.noun_class) for s in ds.segments]  # noqa: E731
    # Balanced: every action the same number of times in each split, every one present in validation.
    for ds in (train, val, pre):
        counts = np.bincount([v * len(ds.noun_classes) + n for v, n in actions(ds)], minlength=n_actions)
        assert counts.min() == counts.max() > 0
    assert len(pre) > len(train) > len(val)
    # Disjoint videos, both EPIC-55 (PXX_YY) and extension (PXX_1YY) ids.
    vids = [{s.video_id for s in ds.segments} for ds in (train, val, pre)]
    assert not (vids[0] & vids[1]) and not (vids[0] & vids[2]) and not (vids[1] & vids[2])
    assert any(len(v.split("_")[1]) == 2 for v in vids[0]) and any(len(v.split("_")[1]) == 3 for v in vids[0])
    seg = train.segments[0]
    assert seg.num_frames > SPEC.frames
    assert {"degradation", "strength", "snr_db"} <= set(seg.extra)
    assert {s.extra["degradation"] for s in pre.segments} >= {"none", "blur", "low_light", "occlusion", "shake"}


def test_clip_shapes_and_dtypes(tiny_dataset: Path) -> None:
    ds = open_dataset(tiny_dataset, "train", SPEC)
    clip = ds.load(0)
    assert clip.inputs["rgb"].shape == (8, 32, 40, 3) and clip.inputs["rgb"].dtype == np.uint8
    assert clip.inputs["flow"].shape == (8, 32, 40, 2) and clip.inputs["flow"].dtype == np.uint8
    assert clip.inputs["audio"].shape == (SPEC.audio_samples,) and clip.inputs["audio"].dtype == np.float32
    assert np.abs(clip.inputs["audio"]).max() > 0, "audio must not be silent"
    assert clip.inputs["rgb"].std() > 5
    seg = ds.segments[0]
    assert (clip.verb_class, clip.noun_class) == (seg.verb_class, seg.noun_class)
    assert clip.audio_range[1] - clip.audio_range[0] == SPEC.audio_samples


def test_sampling_rule_matches_loaded_frames(tiny_dataset: Path) -> None:
    ds = open_dataset(tiny_dataset, "train", SPEC)
    for i in range(len(ds)):
        seg = ds.segments[i]
        n = seg.num_frames
        clip = ds.load(i)
        centres = seg.start_frame + np.floor((np.arange(8) + 0.5) * n / 8).astype(int)
        np.testing.assert_array_equal(clip.rgb_frames, centres)
        stride = 2 if len(seg.video_id.split("_")[1]) == 2 else 1
        np.testing.assert_array_equal(clip.flow_frames, (centres - 1) // stride + 1)
        fps = ds.fps[seg.video_id]
        centre = round(((seg.start_frame - 1) + seg.stop_frame) / 2 / fps * 24000)
        assert clip.audio_range == (centre - 12000, centre + 12000)
    # Train mode: one frame inside each bin, reproducible from the rng.
    seg = ds.segments[0]
    k = np.arange(8)
    lo = seg.start_frame + np.floor(k * seg.num_frames / 8).astype(int)        # bin k = [k w, (k+1) w)
    hi = seg.start_frame + np.ceil((k + 1) * seg.num_frames / 8).astype(int) - 1
    a = ds.load(0, train=True, rng=np.random.default_rng(1)).rgb_frames
    b = ds.load(0, train=True, rng=np.random.default_rng(1)).rgb_frames
    np.testing.assert_array_equal(a, b)
    assert np.all(a >= lo) and np.all(a <= hi)


def test_sampling_functions() -> None:
    np.testing.assert_array_equal(sample_frames(1, 16, 4, train=False), [3, 7, 11, 15])
    np.testing.assert_array_equal(sample_frames(5, 6, 4, train=False), [5, 5, 6, 6])   # short segment repeats
    draws = np.stack([sample_frames(1, 16, 4, True, np.random.default_rng(s)) for s in range(200)])
    assert set(np.unique(draws)) == set(range(1, 17))          # every frame reachable in training
    np.testing.assert_array_equal(flow_frames_for(np.array([1, 2, 3, 4]), "P01_01"), [1, 1, 2, 2])
    np.testing.assert_array_equal(flow_frames_for(np.array([1, 2, 3, 4]), "P01_101"), [1, 2, 3, 4])
    assert audio_window(1, 60, 60.0, 24000, 24000) == (0, 24000)   # frames 1..60 = first second


def test_eval_loading_is_deterministic(tiny_dataset: Path) -> None:
    ds = open_dataset(tiny_dataset, "validation", SPEC)
    a, b = ds.load(3), ds.load(3)
    for k in a.inputs:
        np.testing.assert_array_equal(a.inputs[k], b.inputs[k])


def test_same_seed_byte_identical_different_seed_differs(tiny_dataset: Path, tmp_path: Path) -> None:
    again = synthesize(tmp_path / "again", preset="tiny", seed=0, progress=False)
    other = synthesize(tmp_path / "other", preset="tiny", seed=1, progress=False)
    ref = _tree_digest(tiny_dataset)
    assert _tree_digest(again) == ref
    digest_other = _tree_digest(other)
    assert digest_other["EPIC_100_train.csv"] != ref["EPIC_100_train.csv"]
    assert digest_other["EPIC_audio.hdf5"] != ref["EPIC_audio.hdf5"]
    assert not list(tmp_path.glob(".*synth-tmp*")), "temporary directory left behind"


def test_synth_refuses_to_overwrite_and_unknown_names(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="already exists"):
        synthesize(tiny_dataset, preset="tiny", progress=False)
    with pytest.raises(DataError, match="unknown preset"):
        synthesize(tmp_path / "x", preset="huge", progress=False)
    with pytest.raises(DataError, match="unknown split"):
        open_dataset(tiny_dataset, "holdout", SPEC)


def test_tar_layout_reads_like_folders(tiny_dataset: Path, tmp_path: Path) -> None:
    from karmma_edge.data.synth.generate import synthesize as synth
    from karmma_edge.data.tars import pack_tree

    tars = synth(tmp_path / "tars", preset="tiny", seed=0, progress=False, layout="tar")
    assert not list(tars.glob("*/rgb_frames/*/")) and list(tars.glob("*/rgb_frames/*.tar"))
    packed = pack_tree(tiny_dataset, tmp_path / "packed")
    # The generator's tars and tars packed from its folders hold the same bytes.
    name = next(tars.glob("*/flow_frames/*.tar")).relative_to(tars)
    assert (tars / name).read_bytes() == (packed / name).read_bytes()
    a, b = open_dataset(tiny_dataset, "validation", SPEC), open_dataset(tars, "validation", SPEC)
    for i in range(0, len(a), 5):
        ca, cb = a.load(i), b.load(i)
        for k in ca.inputs:
            np.testing.assert_array_equal(ca.inputs[k], cb.inputs[k])
