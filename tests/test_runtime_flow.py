"""The device's flow reads like the flow the model was trained on (the dataset's flow frames)."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from karmma_edge.data.epic100 import Epic100Dataset
from karmma_edge.data.frames import resize
from karmma_edge.data.sampling import flow_stride
from karmma_edge.edge_runtime.liveness import LivenessMonitor, LivenessThresholds
from karmma_edge.edge_runtime.rings import FrameRing
from karmma_edge.edge_runtime.sensors import FlowWorker
from karmma_edge.inputs import FlowEncoding, InputSpec

MODEL = 32          # the model's frame side; the tiny data's frames are 64 px


def _worker(encoding: FlowEncoding) -> FlowWorker:
    return FlowWorker(FrameRing(4), LivenessMonitor(["rgb", "flow"], LivenessThresholds()), encoding, MODEL, MODEL, threading.Event())


def _pairs(root, count: int = 12):
    """(camera frame k, camera frame k+1, the model's flow input read from the dataset) for moving pairs."""
    data = Epic100Dataset(root, "train", InputSpec(frames=4, height=MODEL, width=MODEL))
    out = []
    for seg in data.segments:
        if flow_stride(seg.video_id) != 1:      # stride 1: flow frame k is rgb k -> k + 1
            continue
        k = (seg.start_frame + seg.stop_frame) // 2
        pid, vid = seg.participant_id, seg.video_id
        bgr = [cv2.cvtColor(data.frames.rgb(pid, vid, f), cv2.COLOR_RGB2BGR) for f in (k, k + 1)]
        u, v = data.frames.flow(pid, vid, k)
        out.append((*bgr, np.stack([resize(u, MODEL, MODEL), resize(v, MODEL, MODEL)], axis=-1)))
        if len(out) == count:
            break
    assert len(out) == count
    return data, out


def _error_and_motion(worker: FlowWorker, pairs) -> tuple[float, float, float]:
    """Mean |device - dataset| in encoded levels, and the mean motion (|x - 128|) of each."""
    err, device_motion, data_motion = [], [], []
    for bgr0, bgr1, trained in pairs:
        uv = worker.flow(worker.gray(bgr0), worker.gray(bgr1)).astype(np.float32)   # the camera's path
        ref = trained.astype(np.float32)
        err.append(np.abs(uv - ref).mean())
        device_motion.append(np.abs(uv - 128).mean())
        data_motion.append(np.abs(ref - 128).mean())
    return float(np.mean(err)), float(np.mean(device_motion)), float(np.mean(data_motion))


def test_device_flow_matches_the_datasets_flow_frames(tiny_dataset) -> None:
    data, pairs = _pairs(tiny_dataset)
    assert data.flow_encoding == FlowEncoding(8.0, 64, 64)      # declared by the synthetic data
    err, device, trained = _error_and_motion(_worker(data.flow_encoding), pairs)
    # The same function on the same frames; what differs is the flow JPEGs' compression and the
    # camera's gray conversion (measured: 0.4 levels against 6.8 of motion).
    assert abs(device - trained) < 0.1 * trained
    assert err < 0.1 * trained
    # Flow at the model's size (what the device computed before) moves half as many pixels
    # (measured: 3.1 levels of motion, 5.0 off the dataset's).
    at_model_size = _error_and_motion(_worker(FlowEncoding(8.0, MODEL, MODEL)), pairs)
    assert at_model_size[1] < 0.75 * trained and at_model_size[0] > 0.5 * trained


def test_frame_size_keeps_the_cameras_aspect_where_the_data_gives_only_a_height() -> None:
    assert FlowEncoding(20.0, 240).frame_size(480, 640) == (240, 320)
    assert FlowEncoding(8.0, 96, 96).frame_size(480, 640) == (96, 96)
