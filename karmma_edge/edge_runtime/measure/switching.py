"""Profile-switch latency outside the daemon, for `bench`: the time from a live-set change to the
first prediction of the profile it selects, through the daemon's own selector, window assembly and
inference path (sensor rings pre-filled, so the stride wait, a config setting, is left out)."""

from __future__ import annotations

import threading
from itertools import permutations

import numpy as np

from karmma_edge.edge_runtime.backends.base import Engine
from karmma_edge.edge_runtime.clock import Clock
from karmma_edge.edge_runtime.events import EventHub
from karmma_edge.edge_runtime.inference import InferenceWorker
from karmma_edge.edge_runtime.rings import AudioRing, FrameRing
from karmma_edge.edge_runtime.selector import ProfileSelector
from karmma_edge.edge_runtime.telemetry import RuntimeMetrics
from karmma_edge.edge_runtime.windows import PendingWindows, Window, WindowAssembler
from karmma_edge.inputs import InputSpec
from karmma_edge.profiles import parse_profile


def switch_latencies(engines: dict[str, Engine], spec: InputSpec, classes: dict[str, list[str]],
                     repeats: int = 5, seed: int = 0) -> dict[str, float]:
    """Median seconds per "from->to" pair of the (activated) engines' profiles. Open ONNX Runtime
    engines with `spin=False`, as the daemon does."""
    rng = np.random.default_rng(seed)
    clock = Clock()
    window_s = spec.audio_seconds
    rings = {m: FrameRing(spec.frames) for m in ("rgb", "flow")}
    for i in range(spec.frames):
        t = clock.now() - window_s + i * window_s / spec.frames
        for m in rings:
            rings[m].push(t, rng.integers(0, 256, spec.input_shape(m)[1:], dtype=np.uint8))
    audio = AudioRing(spec.audio_samples)
    audio.push(clock.now(), 0.1 * rng.standard_normal(spec.audio_samples).astype(np.float32))
    assembler = WindowAssembler(spec, window_s, rings, audio)
    worker = InferenceWorker(engines, classes, PendingWindows(1), EventHub(), None, RuntimeMetrics(), clock,
                             top_k=5, stop=threading.Event())
    selector = ProfileSelector(list(engines))
    seq = 0

    def predict(live: frozenset[str], changed_at: float) -> float:
        nonlocal seq
        now = clock.now()
        profile = selector.update(live, now)
        seq += 1
        worker.handle(Window(seq, now, profile, live, changed_at, assembler.cut(profile, now)))
        return clock.now() - changed_at

    out = {}
    for a, b in permutations(engines, 2):
        times = []
        for _ in range(repeats):
            predict(frozenset(parse_profile(a)), clock.now())
            times.append(predict(frozenset(parse_profile(b)), clock.now()))
        out[f"{a}->{b}"] = float(np.median(times))
    return out
