"""A bundle's accuracy on the report split with flow made as the device makes it, beside the dataset's flow.

    python scripts/device_flow_accuracy.py --bundle karmma-demo/bundle --data karmma-demo/data

Each clip's flow input is recomputed from its RGB frames by the daemon's FlowWorker (the same rgb
pair the dataset's flow frame was computed from), once with the bundle's `flow_encoding` (what the
device does; the dataset's, for a bundle built before manifests recorded it) and once at the model's frame size (what it did before the bundle carried the
encoding), and every flow profile's FP32 graph is scored with each. Prints action top-1 per profile.
`--consecutive` pairs each frame with the next instead, as a camera at the video's own rate does: the
synthetic data's EPIC-55 ids (30 fps) have flow over two frames, the extension's (25 fps) over one.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import cv2
import numpy as np


def device_flow(data, seg, flow_frames: np.ndarray, worker, consecutive: bool = False) -> np.ndarray:
    """The clip's flow input [T,H,W,2] from the FlowWorker, on the rgb pairs of its flow frames
    (`consecutive`: from each pair's first frame to the next, as a camera at the video's rate pairs them)."""
    from karmma_edge.data.sampling import flow_stride

    stride = flow_stride(seg.video_id)
    out = []
    for f in flow_frames.tolist():
        first = (f - 1) * stride + 1                 # flow frame f: rgb first -> first + stride
        pair = [worker.gray(cv2.cvtColor(data.frames.rgb(seg.participant_id, seg.video_id, k), cv2.COLOR_RGB2BGR))
                for k in (first, first + (1 if consecutive else stride))]
        out.append(worker.flow(*pair))
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--consecutive", action="store_true",
                    help="the device's flow between consecutive frames, as a camera at the video's frame rate "
                         "gives them (EPIC-55 ids' flow frames span two)")
    args = ap.parse_args()

    from karmma_edge.bundle import Bundle
    from karmma_edge.data import open_dataset, report_split
    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.liveness import LivenessMonitor, LivenessThresholds
    from karmma_edge.edge_runtime.rings import FrameRing
    from karmma_edge.edge_runtime.sensors import FlowWorker
    from karmma_edge.inputs import FlowEncoding
    from karmma_edge.metrics import head_labels, scores

    bundle = Bundle(args.bundle)
    spec = bundle.manifest.spec
    split = report_split(args.data)
    data = open_dataset(args.data, split, spec)
    encoding = bundle.manifest.flow_encoding or data.flow_encoding    # a bundle built before it was recorded
    if encoding is None:
        raise SystemExit(f"neither {args.bundle} nor {args.data} says how the flow was made")

    def worker(enc: FlowEncoding) -> FlowWorker:
        return FlowWorker(FrameRing(2), LivenessMonitor(["flow"], LivenessThresholds()), enc, spec.height,
                          spec.width, threading.Event())

    workers = {"device": worker(encoding), "at model size": worker(FlowEncoding(encoding.bound_px, spec.height,
                                                                                spec.width))}
    clips, flows = [], {k: [] for k in ("dataset", *workers)}
    for i, seg in enumerate(data.segments):
        clip = data.load(i)
        clips.append(clip)
        flows["dataset"].append(clip.inputs["flow"])
        for name, w in workers.items():
            flows[name].append(device_flow(data, seg, clip.flow_frames, w, args.consecutive))
    verb = np.array([c.verb_class for c in clips])
    noun = np.array([c.noun_class for c in clips])
    labels = head_labels(bundle.manifest.outputs, verb, noun)
    print(f"{split}: {len(clips)} clips; flow encoding {encoding}; FP32 action top-1 by flow source")
    print(f"{'profile':16s}" + "".join(f"{k:>16s}" for k in flows))
    for profile, entry in bundle.manifest.profiles.items():
        if "flow" not in entry.modalities:
            continue
        engine = create_engine("onnxruntime", bundle.artifact(profile, "fp32"), threads=2).activate()
        row = []
        for source, flow in flows.items():
            logits = {h: [] for h in bundle.manifest.outputs}
            for clip, uv in zip(clips, flow):
                feed = {m: (uv if m == "flow" else clip.inputs[m])[None] for m in entry.modalities}
                out = engine.infer(feed)
                for h in logits:
                    logits[h].append(out[h][0])
            row.append(scores({h: np.stack(v) for h, v in logits.items()}, labels)["action_top1"])
        engine.deactivate()
        print(f"{profile:16s}" + "".join(f"{a:16.1f}" for a in row))


if __name__ == "__main__":
    main()
