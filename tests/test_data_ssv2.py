"""Something-Something v2 reader on a tiny tree of real .webm files written here with OpenCV."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from karmma_edge.data import open_dataset
from karmma_edge.data.commands import app
from karmma_edge.errors import DataError
from karmma_edge.inputs import InputSpec

LABELS = {"Holding something next to something": "0", "Pushing something from left to right": "1"}
VIDEOS = {"101": (24, "Holding [something] next to [something]"), "102": (30, "Pushing [something] from left to right"),
          "201": (18, "Pushing [something] from left to right")}


def level(f: int) -> int:
    return 7 * f    # flat grey level encodes the frame number; VP8 keeps flat frames within a few levels


@pytest.fixture()
def ssv2(tmp_path: Path) -> Path:
    root = tmp_path / "ssv2"
    (root / "20bn-something-something-v2").mkdir(parents=True)
    for vid, (n, _) in VIDEOS.items():
        w = cv2.VideoWriter(str(root / "20bn-something-something-v2" / f"{vid}.webm"),
                            cv2.VideoWriter_fourcc(*"VP80"), 12, (64, 48))
        assert w.isOpened(), "OpenCV here cannot write VP8 webm"
        for f in range(1, n + 1):
            img = np.full((48, 64, 3), level(f), np.uint8)
            cv2.rectangle(img, (2 * f, 10), (2 * f + 12, 30), (255, 255, 255), -1)   # a block moving right
            w.write(img)
        w.release()
    (root / "labels.json").write_text(json.dumps(LABELS))
    entries = lambda ids: [{"id": i, "label": "x", "template": VIDEOS[i][1], "placeholders": ["a"]} for i in ids]  # noqa: E731
    (root / "train.json").write_text(json.dumps(entries(["101", "102"])))
    (root / "validation.json").write_text(json.dumps(entries(["201"])))
    return root


def test_ssv2_clip(ssv2: Path) -> None:
    spec = InputSpec(frames=4, height=24, width=32)
    ds = open_dataset(ssv2, "train", spec, fmt="ssv2")
    assert ds.verb_classes == list(LABELS) and ds.modalities == ("rgb", "flow")
    assert [s.verb_class for s in ds.segments] == [0, 1]
    clip = ds.load(1)                                   # 30 frames, T=4: centres of 7.5-frame bins
    assert clip.rgb_frames.tolist() == [4, 12, 19, 27]
    assert clip.inputs["rgb"].shape == (4, 24, 32, 3) and clip.inputs["flow"].shape == (4, 24, 32, 2)
    grey = [int(np.median(clip.inputs["rgb"][t, 20:, :, 0])) for t in range(4)]   # below the block
    assert all(abs(g - level(f)) <= 6 for g, f in zip(grey, clip.rgb_frames))
    # The block moves right: u (first flow channel) above 128 where it is, flow cached on disk.
    assert clip.inputs["flow"][..., 0].max() >= 136   # 2 px/frame at bound 20 px: 128 + 2 * 255 / 40
    assert (ssv2 / ".karmma_flow2" / "102.npz").is_file()
    again = open_dataset(ssv2, "train", spec, fmt="ssv2").load(1)
    np.testing.assert_array_equal(again.inputs["flow"], clip.inputs["flow"])


def test_ssv2_missing_video_and_check(ssv2: Path, tmp_path: Path) -> None:
    (ssv2 / "20bn-something-something-v2" / "201.webm").unlink()
    ds = open_dataset(ssv2, "validation", InputSpec(frames=4), fmt="ssv2")
    with pytest.raises(DataError, match=r"201\.webm: file not found.*segment 201"):
        ds.load(0)
    res = CliRunner().invoke(app, ["check", "--root", str(ssv2), "--format", "ssv2"])
    assert res.exit_code != 0 and "201.webm: file not found -- needed by segment(s) 201" in res.output


def test_ssv2_inspect(ssv2: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.npz"
    res = CliRunner().invoke(app, ["inspect", "--root", str(ssv2), "--format", "ssv2", "--id", "101",
                                   "--out", str(out), "--frames", "4", "--size", "32x24"])
    assert res.exit_code == 0, res.output
    z = np.load(out)
    assert set(z.files) == {"rgb", "flow", "rgb_frames", "flow_frames", "audio_range", "verb_class", "noun_class"}
    assert int(z["verb_class"]) == 0 and int(z["noun_class"]) == -1
