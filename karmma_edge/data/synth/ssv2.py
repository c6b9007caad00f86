"""The synthetic benchmark in Something-Something v2 layout: one `.webm` per clip, one action label.

The same procedural clips as the EPIC-layout benchmark, but each clip is its own video and its label
is the motion alone (a template such as "take [something]"): SSv2's single-label form, no audio.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from karmma_edge.data.synth.plan import SPLIT_CODES, VideoPlan, classes, plan_split
from karmma_edge.data.synth.presets import Preset
from karmma_edge.data.synth.render import VideoRenderer
from karmma_edge.errors import DataError

SPLITS = ("train", "validation")       # SSv2 has no pretrain pool: extractors pre-train on train
VIDEO_DIR = "20bn-something-something-v2"
FPS = 12                                # SSv2's own frame rate


def template(verb: str) -> str:
    return f"{verb.capitalize()} [something]"


def write_ssv2(root: Path, p: Preset, seed: int) -> dict:
    """labels.json, train.json, validation.json and the videos under `root`; returns a summary."""
    verbs, nouns = classes(p)
    (root / VIDEO_DIR).mkdir(parents=True)
    labels = {template(v.name).replace("[", "").replace("]", ""): str(i) for i, v in enumerate(verbs)}
    (root / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    counts = {}
    next_id = 1
    for split in SPLITS:
        entries = []
        for video in plan_split(p, split, seed):
            for k, seg in enumerate(video.segments):
                vid = str(next_id)
                next_id += 1
                _render(root / VIDEO_DIR / f"{vid}.webm", video, k, p, verbs, nouns, seed)
                entries.append({"id": vid, "label": template(verbs[seg.verb].name).replace("[something]", nouns[seg.noun].name),
                                "template": template(verbs[seg.verb].name), "placeholders": [nouns[seg.noun].name]})
        (root / f"{split}.json").write_text(json.dumps(entries, indent=1) + "\n")
        counts[split] = len(entries)
    return {"classes": len(labels), "splits": counts}


def _render(path: Path, video: VideoPlan, k: int, p: Preset, verbs, nouns, seed: int) -> None:
    seg = video.segments[k]
    rng = np.random.default_rng([seed, SPLIT_CODES[video.split], 1000 + video.index, k])
    seg = type(seg)(**{**seg.__dict__, "start_frame": 1})
    clip = VideoPlan(video.split, video.participant_id, video.video_id, FPS, video.index, [seg], seg.frames)
    renderer = VideoRenderer(clip, nouns, verbs, p.width, p.height, rng)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"vp80"), FPS, (p.width, p.height))
    if not writer.isOpened():
        raise DataError(f"{path}: this OpenCV build cannot write VP8 .webm; install opencv-python-headless "
                        "from PyPI (its FFmpeg has libvpx)")
    for f in range(1, seg.frames + 1):
        writer.write(cv2.cvtColor(renderer.frame(f), cv2.COLOR_RGB2BGR))
    writer.release()
