"""One time base for the daemon: monotonic seconds for ordering and waiting, wall time for reports."""

from __future__ import annotations

import time


class Clock:
    def __init__(self) -> None:
        self._wall_offset = time.time() - time.monotonic()

    def now(self) -> float:
        return time.monotonic()

    def wall(self, t: float) -> float:
        """Unix time of monotonic time `t` (what events, /healthz and the JSON Lines report)."""
        return t + self._wall_offset
