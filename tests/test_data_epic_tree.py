"""Acceptance 2 and 3 of issue 3 on an EPIC-100 tree built here, without the synthetic generator.

Frames are flat colours that encode their own frame number, audio is a ramp (sample i has value
i / 2**20), some videos are folders and some the distributed tar files, ids are both EPIC-55
(PXX_YY, flow stride 2) and extension (PXX_1YY, stride 1). `data inspect` must return exactly the
frames the sampling rule picks, the flow frames the stride rule gives and the samples the fps puts
at the segment's centre; broken files must fail loudly, naming the file and the segment.
"""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from karmma_edge.data import open_dataset
from karmma_edge.data.commands import app
from karmma_edge.errors import DataError
from karmma_edge.inputs import InputSpec

T = 6
COLUMNS = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
           "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
           "noun_class", "all_nouns", "all_noun_classes"]
# video id -> (participant, fps, n_frames, audio rate, stored as tar)
VIDEOS = {
    "P01_01": ("P01", 60.0, 90, 24000, False),
    "P01_101": ("P01", 50.0, 70, 24000, False),
    "P02_03": ("P02", 59.94, 80, 24000, True),
    "P02_104": ("P02", 25.0, 60, 48000, True),
}
# (narration_id, video, start, stop, verb, noun): the first starts at frame 1, so its audio
# window reaches before the recording and must be zero-padded there.
SEGMENTS = [
    ("P01_01_0", "P01_01", 1, 23, 0, 1),
    ("P01_01_1", "P01_01", 30, 77, 1, 0),
    ("P01_101_0", "P01_101", 10, 33, 1, 1),
    ("P02_03_0", "P02_03", 17, 60, 0, 0),
    ("P02_104_0", "P02_104", 5, 52, 1, 0),
]


def encode_number(k: int) -> tuple[int, int]:
    """Two flat 8-bit levels that survive JPEG: 32 steps of 8 each."""
    return 8 * (k % 32) + 4, 8 * (k // 32) + 4


def decode_number(lo: np.ndarray, hi: np.ndarray) -> int:
    return int(np.rint((float(np.median(lo)) - 4) / 8)) + 32 * int(np.rint((float(np.median(hi)) - 4) / 8))


def jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def ramp(n: int) -> np.ndarray:
    return (np.arange(n) / 2 ** 20).astype(np.float32)


def write_tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def build_tree(root: Path) -> Path:
    for vid, (pid, fps, n, rate, as_tar) in VIDEOS.items():
        stride = 2 if len(vid.split("_")[1]) == 2 else 1
        rgb, flow = {}, {}
        for f in range(1, n + 1):
            lo, hi = encode_number(f)
            img = np.zeros((24, 32, 3), np.uint8)
            img[..., 0], img[..., 1], img[..., 2] = 200, hi, lo      # BGR on disk: R = lo, G = hi
            rgb[f"frame_{f:010d}.jpg"] = jpeg(img)
        for k in range(1, (n - 1) // stride + 2):
            lo, hi = encode_number(k)
            flow[f"u/frame_{k:010d}.jpg"] = jpeg(np.full((24, 32), lo, np.uint8))
            flow[f"v/frame_{k:010d}.jpg"] = jpeg(np.full((24, 32), hi, np.uint8))
        for kind, members in (("rgb", rgb), ("flow", flow)):
            base = root / pid / f"{kind}_frames"
            if as_tar:
                write_tar(base / f"{vid}.tar", members)
            else:
                for name, data in members.items():
                    (base / vid / name).parent.mkdir(parents=True, exist_ok=True)
                    (base / vid / name).write_bytes(data)
    with h5py.File(root / "EPIC_audio.hdf5", "w") as h5:
        for vid, (pid, fps, n, rate, _) in VIDEOS.items():
            ds = h5.create_dataset(vid, data=ramp(int(n / fps * rate)))
            if rate != 24000:
                ds.attrs["sample_rate"] = rate
    for split, segs in (("train", SEGMENTS[:3]), ("validation", SEGMENTS[3:])):
        with (root / f"EPIC_100_{split}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            for nid, vid, a, b, v, n in segs:
                w.writerow([nid, VIDEOS[vid][0], vid, "00:00:00.00", "00:00:00.00", "00:00:01.00", a, b,
                            "x y", "x", v, "y", n, "['y']", f"[{n}]"])
    for name, keys in (("verb", ["take", "put"]), ("noun", ["cup", "pan"])):
        (root / f"EPIC_100_{name}_classes.csv").write_text(
            "id,key,instances,category\n" + "".join(f"{i},{k},['{k}'],c\n" for i, k in enumerate(keys)))
    (root / "EPIC_100_video_info.csv").write_text(
        "video_id,duration,fps,resolution\n" + "".join(f"{v},{n / fps:.3f},{fps},32x24\n" for v, (_, fps, n, _, _) in VIDEOS.items()))
    return root


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return build_tree(tmp_path / "epic")


def expected(nid: str, spec: InputSpec) -> dict:
    _, vid, a, b, v, n = next(s for s in SEGMENTS if s[0] == nid)
    _, fps, n_frames, rate, _ = VIDEOS[vid]
    length = b - a + 1
    rgb = [a + int((k + 0.5) * length / T) for k in range(T)]                # bin centres
    stride = 2 if len(vid.split("_")[1]) == 2 else 1
    flow = [(f - 1) // stride + 1 for f in rgb]
    centre_s = ((a - 1) + b) / 2 / fps                                       # frame f spans [(f-1)/fps, f/fps)
    n_file = int(round(spec.audio_seconds * rate))
    first = int(np.floor(centre_s * rate + 0.5)) - n_file // 2
    idx = np.arange(first, first + n_file)
    total = int(n_frames / fps * rate)
    audio = np.where((idx >= 0) & (idx < total), idx / 2 ** 20, 0.0)
    return {"rgb": rgb, "flow": flow, "range": (first, first + n_file), "audio": audio, "verb": v, "noun": n}


@pytest.mark.parametrize("nid", [s[0] for s in SEGMENTS])
def test_inspect_returns_exactly_the_rule(tree: Path, tmp_path: Path, nid: str) -> None:
    out = tmp_path / f"{nid}.npz"
    res = CliRunner().invoke(app, ["inspect", "--root", str(tree), "--id", nid, "--out", str(out),
                                   "--frames", str(T), "--size", "16x12"])
    assert res.exit_code == 0, res.output
    z = np.load(out)
    assert set(z.files) == {"rgb", "flow", "audio", "rgb_frames", "flow_frames", "audio_range", "verb_class", "noun_class"}
    exp = expected(nid, InputSpec(frames=T))
    assert z["rgb"].shape == (T, 12, 16, 3) and z["rgb"].dtype == np.uint8
    assert z["flow"].shape == (T, 12, 16, 2) and z["flow"].dtype == np.uint8
    assert z["rgb_frames"].tolist() == exp["rgb"]
    assert z["flow_frames"].tolist() == exp["flow"]
    # The pixels say which frame was really read (RGB channel order: R = low part, G = high part).
    assert [decode_number(z["rgb"][t, ..., 0], z["rgb"][t, ..., 1]) for t in range(T)] == exp["rgb"]
    assert [decode_number(z["flow"][t, ..., 0], z["flow"][t, ..., 1]) for t in range(T)] == exp["flow"]
    assert z["audio_range"].tolist() == list(exp["range"])
    assert z["audio"].shape == (24000,) and z["audio"].dtype == np.float32
    if len(exp["audio"]) == 24000:
        np.testing.assert_array_equal(z["audio"], exp["audio"].astype(np.float32))
    else:   # 48 kHz file: resampled to 24 kHz by averaging sample pairs
        np.testing.assert_allclose(z["audio"], exp["audio"].reshape(-1, 2).mean(1), atol=2 / 2 ** 20)
    assert (int(z["verb_class"]), int(z["noun_class"])) == (exp["verb"], exp["noun"])


def test_audio_padding_only_outside_the_recording(tree: Path) -> None:
    ds = open_dataset(tree, "train", InputSpec(frames=T))
    clip = ds.load(ds.index_of("P01_01_0"))
    first = clip.audio_range[0]
    assert first < 0
    assert np.all(clip.inputs["audio"][:-first] == 0) and np.all(clip.inputs["audio"][-first + 1:] > 0)


def test_tar_and_folder_read_identically(tree: Path, tmp_path: Path) -> None:
    # Unpack one tar video into folders (a copy) and compare every clip.
    copy = build_tree(tmp_path / "unpacked")
    for kind in ("rgb", "flow"):
        tar_path = copy / "P02" / f"{kind}_frames" / "P02_03.tar"
        with tarfile.open(tar_path) as tf:
            tf.extractall(tar_path.with_suffix(""), filter="data")
        tar_path.unlink()
    spec = InputSpec(frames=T, height=12, width=16)
    a = open_dataset(tree, "validation", spec).load(0)
    b = open_dataset(copy, "validation", spec).load(0)
    for k in a.inputs:
        np.testing.assert_array_equal(a.inputs[k], b.inputs[k])


# --- acceptance 3: bad data names the file and the segment, never a silent zero tensor ---------

def _load_all(root: Path, split: str) -> None:
    ds = open_dataset(root, split, InputSpec(frames=T))
    for i in range(len(ds)):
        ds.load(i)


def test_missing_frame(tree: Path) -> None:
    victim = tree / "P01" / "rgb_frames" / "P01_01" / f"frame_{expected('P01_01_1', InputSpec(frames=T))['rgb'][2]:010d}.jpg"
    victim.unlink()
    with pytest.raises(DataError, match=r"frame_\d+\.jpg.*file not found.*segment P01_01_1"):
        _load_all(tree, "train")


def test_truncated_jpeg(tree: Path) -> None:
    victim = tree / "P01" / "flow_frames" / "P01_101" / "v" / f"frame_{expected('P01_101_0', InputSpec(frames=T))['flow'][0]:010d}.jpg"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(DataError, match=r"P01_101/v/frame_\d+\.jpg: truncated.*segment P01_101_0"):
        _load_all(tree, "train")


def test_missing_tar_member(tree: Path) -> None:
    tar_path = tree / "P02" / "rgb_frames" / "P02_03.tar"
    keep = expected("P02_03_0", InputSpec(frames=T))["rgb"][1:]
    with tarfile.open(tar_path) as tf:
        members = {m.name[2:]: tf.extractfile(m).read() for m in tf if int(m.name[-14:-4]) in keep}
    write_tar(tar_path, members)
    with pytest.raises(DataError, match=r"P02_03\.tar:frame_\d+\.jpg: member not in tar.*segment P02_03_0"):
        _load_all(tree, "validation")


def test_csv_missing_column(tree: Path) -> None:
    path = tree / "EPIC_100_train.csv"
    rows = list(csv.reader(path.open()))
    col = rows[0].index("noun_class")
    path.write_text("\n".join(",".join(r[:col] + r[col + 1:]) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"EPIC_100_train\.csv: missing column\(s\) noun_class"):
        open_dataset(tree, "train", InputSpec())


def test_video_absent_from_audio_file(tree: Path) -> None:
    with h5py.File(tree / "EPIC_audio.hdf5", "a") as h5:
        del h5["P01_101"]
    with pytest.raises(DataError, match=r"EPIC_audio\.hdf5: no audio for video P01_101.*segment P01_101_0"):
        _load_all(tree, "train")


def test_check_lists_every_problem_with_its_segment(tree: Path) -> None:
    (tree / "P01" / "rgb_frames" / "P01_01" / "frame_0000000031.jpg").unlink()
    broken = tree / "P01" / "flow_frames" / "P01_101" / "u" / "frame_0000000012.jpg"
    broken.write_bytes(broken.read_bytes()[:100])
    with h5py.File(tree / "EPIC_audio.hdf5", "a") as h5:
        del h5["P02_03"]
    res = CliRunner().invoke(app, ["check", "--root", str(tree)])
    assert res.exit_code != 0
    out = res.output
    assert "frame_0000000031.jpg: file not found -- needed by segment(s) P01_01_1" in out
    assert "u/frame_0000000012.jpg: truncated or not a JPEG -- needed by segment(s) P01_101_0" in out
    assert "no audio for video P02_03 -- needed by segment(s) P02_03_0" in out
    assert isinstance(res.exception, DataError) and "3 problem(s)" in str(res.exception)


def test_check_passes_on_a_good_tree(tree: Path) -> None:
    res = CliRunner().invoke(app, ["check", "--root", str(tree), "--decode"])
    assert res.exit_code == 0, res.output
    assert "ok: 5 segments" in res.output


def test_tar_index_matches_tarfile_and_falls_back(tmp_path: Path) -> None:
    from karmma_edge.data.frames import _Tar, _fast_index

    members = {f"u/frame_{k:010d}.jpg": bytes([k]) * (100 + 700 * k) for k in range(1, 6)}
    members["x" * 150 + ".jpg"] = b"long name"          # needs a GNU/pax long-name header
    short = {k: v for k, v in members.items() if len(k) < 100}
    for name, content, fmt in (("short.tar", short, tarfile.USTAR_FORMAT), ("long.tar", members, tarfile.PAX_FORMAT)):
        path = tmp_path / name
        with tarfile.open(path, "w", format=fmt) as tf:
            for k, v in content.items():
                info = tarfile.TarInfo(f"./{k}")
                info.size = len(v)
                tf.addfile(info, io.BytesIO(v))
        tar = _Tar(path)
        assert {k: tar.read(k) for k in content} == content
    assert len(_fast_index(tmp_path / "short.tar")) == len(short)
    with pytest.raises(ValueError):
        _fast_index(tmp_path / "long.tar")
