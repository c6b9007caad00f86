"""The flow the data and the device share: the camera's own motion removed, the moving object kept."""

from __future__ import annotations

import cv2
import numpy as np

from karmma_edge.data.flow import decode_flow, encode_flow, flow_engine, scene_flow


def _textured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w)).astype(np.uint8), (0, 0), 1.5)


def test_scene_flow_removes_the_camera_and_keeps_the_object() -> None:
    rng = np.random.default_rng(0)
    scene, patch = _textured(rng, 120, 120), _textured(rng, 24, 24)
    cam, obj = (2, 1), 3                 # the camera pans 2 px right and 1 down; the object moves 3 px more
    frames = []
    for k in range(2):
        img = scene.copy()
        x = 40 + k * obj
        img[40:64, x:x + 24] = patch
        dy, dx = k * cam[1], k * cam[0]
        frames.append(np.ascontiguousarray(img[12 - dy:108 - dy, 12 - dx:108 - dx]))   # 96 x 96 view
    dis = flow_engine(96, 96)
    raw = dis.calc(frames[0], frames[1], None)
    flow = scene_flow(dis, frames[0], frames[1])
    background = np.ones((96, 96), bool)
    background[20:60, 20:64] = False     # the object's path, with a margin
    assert np.allclose(np.median(raw[background], axis=0), cam, atol=0.3)       # the raw flow is the camera
    assert np.abs(np.median(flow[background], axis=0)).max() < 0.3                # gone from the scene flow
    inside = flow[32:48, 34:46]          # the object's interior in the first view
    assert abs(np.median(inside[..., 0]) - obj) < 0.75 and abs(np.median(inside[..., 1])) < 0.75


def test_encoded_flow_round_trips_within_quantisation() -> None:
    flow = np.random.default_rng(1).uniform(-10, 10, (8, 8, 2)).astype(np.float32)
    back = decode_flow(*encode_flow(flow, 8.0), 8.0)
    assert np.abs(back - np.clip(flow, -8, 8)).max() <= 8.0 / 255 + 1e-6


def test_a_dataset_declares_how_its_flow_was_made_in_karmma_flow_json(tmp_path) -> None:
    import pytest

    from karmma_edge.data.flow import FLOW_FILE, read_flow_file, write_flow_file
    from karmma_edge.errors import DataError
    from karmma_edge.inputs import FlowEncoding

    assert read_flow_file(tmp_path) is None                       # not declared: the device's config
    write_flow_file(tmp_path, FlowEncoding(20.0, 256, 456))
    assert read_flow_file(tmp_path) == FlowEncoding(20.0, 256, 456)
    (tmp_path / FLOW_FILE).write_text('{"bound_px": 20, "height": 240}')
    assert read_flow_file(tmp_path) == FlowEncoding(20.0, 240, None)   # the camera's aspect kept
    for bad in ('{"bound_px": 20}', '{"bound_px": -1, "height": 240}', "[1, 2]", "{not json"):
        (tmp_path / FLOW_FILE).write_text(bad)
        with pytest.raises(DataError, match=FLOW_FILE) as err:
            read_flow_file(tmp_path)
        assert "bound_px" in str(err.value)
