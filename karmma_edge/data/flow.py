"""Optical flow as EPIC-KITCHENS stores it: u, v clipped to +-bound and mapped to 0..255 (128 = still)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from karmma_edge.errors import DataError
from karmma_edge.file_formats import read_json
from karmma_edge.inputs import FlowEncoding

EPIC_BOUND_PX = 20.0    # EPIC-KITCHENS' bound, for full-size frames (SSv2's flow uses it too)
FLOW_FILE = "KARMMA_flow.json"
_FLOW_FILE_FIX = ('write it as {"bound_px": B, "height": H, "width": W}: the bound (pixels) the flow was '
                  'clipped to and the frame size it was computed at (width may be left out: the aspect kept), '
                  'which the device repeats')


def read_flow_file(root: Path) -> FlowEncoding | None:
    """How a dataset's flow frames were made, as its root declares in KARMMA_flow.json (a real EPIC
    tree: the bound and frame size its flow was extracted with); None without the file."""
    path = Path(root) / FLOW_FILE
    if not path.is_file():
        return None
    d = read_json(path, _FLOW_FILE_FIX, DataError)
    try:
        enc = FlowEncoding(float(d["bound_px"]), int(d["height"]),
                           None if d.get("width") is None else int(d["width"]))
    except (TypeError, KeyError, ValueError):
        raise DataError(f"{path}: needs bound_px and height (width optional); {_FLOW_FILE_FIX}") from None
    if enc.bound_px <= 0 or enc.height < 8 or (enc.width is not None and enc.width < 8):
        raise DataError(f"{path}: bound_px must be > 0 and height, width at least 8; {_FLOW_FILE_FIX}")
    return enc


def write_flow_file(root: Path, encoding: FlowEncoding) -> None:
    (Path(root) / FLOW_FILE).write_text(json.dumps(encoding.to_dict(), indent=2) + "\n")


def flow_engine(height: int, width: int) -> cv2.DISOpticalFlow:
    """OpenCV's DIS dense flow, ULTRAFAST preset: ~1 ms per 96x96 pair on one core (Farneback: ~2 ms).

    EPIC used TV-L1, far slower. DIS is deterministic for a given input. Its finest pyramid scale
    sets the flow's resolution (patches of 8 px at 2**scale px each): at 2, a 96 px frame gets 32 px
    blocks, coarser than the objects, and the synthetic data's shapes do not survive in the flow
    (a probe read the noun from flow at chance); full resolution up to 96 px, then a scale per doubling.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    dis.setFinestScale(max(0, int(np.ceil(np.log2(min(height, width) / 96)))))
    return dis


def scene_flow(dis: cv2.DISOpticalFlow, prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Flow between two gray frames with the camera's own motion removed: [H,W,2] float pixels.

    A head-worn camera sways and shakes, so the raw flow moves everywhere and what the hands do is
    a small difference on top; the median flow is that motion (the background fills most of the
    view), and subtracting it leaves the moving object's silhouette (a flow probe,
    `scripts/data_probe.py`, read the action at 31 % instead of 22 % on the demo data, the verb at
    96 % instead of 88 %). The synthetic data, SSv2's flow cache and the device use this one function.
    """
    flow = dis.calc(prev, cur, None)
    return flow - np.median(flow.reshape(-1, 2), axis=0)


def encode_flow(flow: np.ndarray, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """float [H,W,2] pixel displacements -> (u, v) uint8 images: round((clip(x) + b) / 2b * 255)."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2.0 * bound))
    q = np.rint(scaled).astype(np.uint8)
    return np.ascontiguousarray(q[..., 0]), np.ascontiguousarray(q[..., 1])


def decode_flow(u: np.ndarray, v: np.ndarray, bound: float) -> np.ndarray:
    """Inverse of encode_flow (up to quantisation): uint8 (u, v) -> float32 [H,W,2] pixels."""
    uv = np.stack([u, v], axis=-1).astype(np.float32)
    return uv * (2.0 * bound / 255.0) - bound
