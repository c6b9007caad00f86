"""Render one synthetic video to JPEG frames and EPIC-encoded flow; return its audio track."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from karmma_edge.data.flow import encode_flow, flow_engine, scene_flow
from karmma_edge.data.frames import frame_name
from karmma_edge.data.sampling import flow_stride
from karmma_edge.data.tars import write_tar
from karmma_edge.data.synth.plan import SPLIT_CODES, Noun, Verb, VideoPlan
from karmma_edge.data.synth.presets import Preset
from karmma_edge.data.synth.render import VideoRenderer
from karmma_edge.data.synth.sound import render_audio


def render_video(root: Path, video: VideoPlan, p: Preset, verbs: list[Verb], nouns: list[Noun],
                 seed: int, layout: str = "folders") -> tuple[str, np.ndarray]:
    """Frames go to folders (`<vid>/frame_*.jpg`) or, with layout "tar", to EPIC's per-video tars."""
    cv2.setNumThreads(1)    # one video per process; threads would only contend on 2 cores
    rng = np.random.default_rng([seed, SPLIT_CODES[video.split], 1000 + video.index])
    renderer = VideoRenderer(video, nouns, verbs, p.width, p.height, rng)
    rgb_dir = root / video.participant_id / "rgb_frames" / video.video_id
    flow_dir = root / video.participant_id / "flow_frames" / video.video_id
    rgb_files: dict[str, bytes] = {}
    flow_files: dict[str, bytes] = {}
    q = [cv2.IMWRITE_JPEG_QUALITY, p.jpeg_quality]
    grays = []
    for f in range(1, video.n_frames + 1):
        img = renderer.frame(f)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), q)
        rgb_files[frame_name(f)] = buf.tobytes()
        # Flow is computed from the decoded JPEGs, as real pipelines compute it from the video.
        grays.append(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE))
    # EPIC-55 flow (stride 2): flow frame k from rgb 2k-1 to 2k+1; extension (stride 1): k to k+1.
    stride = flow_stride(video.video_id)
    dis = flow_engine(p.height, p.width)
    n_flow = (video.n_frames - 1) // stride
    for k in range(1, n_flow + 1):
        a = (k - 1) * stride
        flow = scene_flow(dis, grays[a], grays[a + stride])
        u, v = encode_flow(flow, p.flow_bound)
        name = frame_name(k)
        flow_files[f"u/{name}"] = cv2.imencode(".jpg", u, q)[1].tobytes()
        flow_files[f"v/{name}"] = cv2.imencode(".jpg", v, q)[1].tobytes()
    for folder, files in ((rgb_dir, rgb_files), (flow_dir, flow_files)):
        if layout == "tar":
            write_tar(folder.with_name(f"{folder.name}.tar"), files)
        else:
            for name, data in files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
    audio = render_audio(video, verbs, nouns, rng)
    return video.video_id, audio
