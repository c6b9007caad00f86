"""The engine lifecycle every backend shares: activate, infer, deactivate (after Polygraphy's runners).

Input checks and timing live here once; a backend implements only `_activate`, `_infer`,
`_deactivate` and reports its input signature.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from karmma_edge.errors import KarmmaError


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]      # a str marks a dynamic axis (the batch)
    dtype: np.dtype


class Engine(ABC):
    backend: str = "?"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.is_active = False
        self.inputs: list[TensorSpec] = []
        self.outputs: list[str] = []
        self.last_latency_s: float | None = None
        self.load_time_s: float | None = None

    def activate(self) -> "Engine":
        if not self.is_active:
            start = time.perf_counter()
            self._activate()
            self.load_time_s = time.perf_counter() - start
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.is_active:
            raise RuntimeError(f"{self.backend} engine {self.path} used before activate()")
        self._check(feed)
        start = time.perf_counter()
        out = self._infer(feed)
        self.last_latency_s = time.perf_counter() - start
        return out

    def _check(self, feed: dict[str, np.ndarray]) -> None:
        expected = {t.name for t in self.inputs}
        if set(feed) != expected:
            raise KarmmaError(
                f"engine {self.path.name} takes inputs {sorted(expected)}, was given {sorted(feed)}"
            )
        for t in self.inputs:
            arr = feed[t.name]
            if arr.dtype != t.dtype:
                raise KarmmaError(f"input {t.name!r} must be {t.dtype}, got {arr.dtype}")
            if len(arr.shape) != len(t.shape) or any(
                isinstance(want, int) and want != got for want, got in zip(t.shape, arr.shape)
            ):
                raise KarmmaError(f"input {t.name!r} must have shape {t.shape}, got {arr.shape}")

    def __enter__(self) -> "Engine":
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    @abstractmethod
    def _activate(self) -> None: ...

    @abstractmethod
    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _deactivate(self) -> None: ...
