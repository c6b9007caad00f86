"""Frame sampling an extractor can declare (issue 16): TSN/TSM segments, dense clips, flow stacks."""

from __future__ import annotations

import numpy as np

from karmma_edge.data.sampling import clip_frames, flow_stacks, sample_frames
from karmma_edge.inputs import InputSpec


def test_segments_is_the_bin_centre_rule():
    spec = InputSpec(frames=4)
    assert clip_frames(11, 40, spec, train=False).tolist() == sample_frames(11, 40, 4, False).tolist()


def test_dense_is_strided_around_the_centre_and_clamped():
    spec = InputSpec(frames=4, sampling="dense", frame_stride=2)
    assert clip_frames(1, 21, spec, train=False).tolist() == [8, 10, 12, 14]      # centre 11
    # Shorter than the span: clamped to the segment, never outside it.
    assert clip_frames(5, 8, spec, train=False).tolist() == [5, 6, 8, 8]
    rng = np.random.default_rng(0)
    for _ in range(20):
        f = clip_frames(1, 40, spec, train=True, rng=rng)
        assert np.all(np.diff(f) == 2) and f[0] >= 1 and f[-1] <= 40


def test_flow_stacks_are_consecutive_and_stop_at_the_segment():
    stacks = flow_stacks(np.array([3, 9]), 5, last=11)
    assert stacks.tolist() == [[3, 4, 5, 6, 7], [9, 10, 11, 11, 11]]
    assert InputSpec(flow_stack=5).input_shape("flow") == (8, 64, 64, 10)
