"""The torch eager student as an `Engine`: the baseline a user would have without this toolkit.

Imports torch at module level on purpose: `bench` imports this module only inside a function, after
checking torch is installed, so `edge_runtime` itself never pulls torch in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from karmma_edge.edge_runtime.backends.base import Engine, TensorSpec
from karmma_edge.profiles import parse_profile
from karmma_edge.train.runs import CHECKPOINT, load_student


class TorchEagerEngine(Engine):
    """One profile of a training run's student, run eagerly in FP32 on the CPU."""

    backend = "torch-eager"

    def __init__(self, run_dir: Path, profile: str, threads: int | None = None):
        super().__init__(Path(run_dir) / CHECKPOINT)
        self.run_dir = Path(run_dir)
        self.profile = profile
        self.threads = threads
        self._student = None

    def _activate(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        self._student, _ = load_student(self.run_dir)
        spec = self._student.spec
        self.inputs = [TensorSpec(m, ("B", *spec.input_shape(m)), np.dtype(spec.input_dtype(m)))
                       for m in parse_profile(self.profile, self._student.modalities)]
        self.outputs = ["verb", "noun"]

    @torch.inference_mode()
    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        verb, noun = self._student({m: torch.from_numpy(a) for m, a in feed.items()})
        return {"verb": verb.numpy(), "noun": noun.numpy()}

    def _deactivate(self) -> None:
        self._student = None
