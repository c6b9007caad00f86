"""Which sensors are live: heartbeats and content verdicts in, a live set out.

Sensor threads report heartbeats (`beat`) stamped with the capture time, plus the content problem
of what they delivered, if any. Whether a sensor is live is a pure function of its recorded state and
the current time (`judge`), so tests drive it with a fake clock and the daemon with the real one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from karmma_edge.profiles import MODALITIES


@dataclass(frozen=True)
class LivenessThresholds:
    stall_timeout_s: float = 1.0       # no heartbeat for this long: dead ("stalled")
    recover_s: float = 0.3             # good heartbeats for this long before (again) alive
    bad_content_s: dict[str, float] = field(default_factory=lambda: {
        "black": 1.0, "frozen": 3.0, "silence": 2.0, "clipping": 1.0})
    flow_max_lag_s: float = 0.5        # flow further behind the camera than this is not live


@dataclass(frozen=True)
class SensorState:
    last_beat: float | None = None     # capture time of the newest data
    good_since: float | None = None    # start of the current run of acceptable data
    issue: str | None = None           # content problem of the newest data
    issue_since: float | None = None
    muted: bool = False
    ended_at: float | None = None      # a file source reached its end (and does not loop)


@dataclass(frozen=True)
class Verdict:
    alive: bool
    reason: str                        # "ok", "muted", "ended", "stalled", "no data", a content issue, "recovering"


def judge(state: SensorState, now: float, th: LivenessThresholds) -> Verdict:
    if state.muted:
        return Verdict(False, "muted")
    if state.ended_at is not None:
        return Verdict(False, "ended")
    if state.last_beat is None:
        return Verdict(False, "no data")
    if now - state.last_beat > th.stall_timeout_s:
        return Verdict(False, "stalled")
    if state.issue is not None and now - state.issue_since >= th.bad_content_s.get(state.issue, 0.0):
        return Verdict(False, state.issue)
    if state.good_since is None or now - state.good_since < th.recover_s:
        return Verdict(False, "recovering")
    return Verdict(True, "ok")


def after_beat(state: SensorState, t: float, issue: str | None, th: LivenessThresholds) -> SensorState:
    """The state after a heartbeat at capture time `t` whose data had `issue` (None = fine)."""
    was = judge(state, t, th)
    gap = state.last_beat is None or t - state.last_beat > th.stall_timeout_s
    if issue is not None:
        since = state.issue_since if state.issue == issue and not gap else t
        return replace(state, last_beat=t, issue=issue, issue_since=since,
                       good_since=None if gap else state.good_since)
    # Good data: recovery starts now if the sensor was dead for a reason its data can cure
    # (a stall, bad content); a short run of bad content never made it dead and changes nothing.
    restart = gap or state.good_since is None or (not was.alive and was.reason not in ("muted", "recovering"))
    return replace(state, last_beat=t, issue=None, issue_since=None,
                   good_since=t if restart else state.good_since)


def live_set(states: dict[str, SensorState], now: float, th: LivenessThresholds) -> frozenset[str]:
    """Live modalities. Flow comes from the camera: live only while rgb is and flow keeps up with it."""
    live = {name for name, s in states.items() if judge(s, now, th).alive}
    if "flow" in live:
        rgb, flow = states.get("rgb"), states["flow"]
        if "rgb" not in live or rgb.last_beat - flow.last_beat > th.flow_max_lag_s:
            live.discard("flow")
    return frozenset(m for m in MODALITIES if m in live)


class LivenessMonitor:
    """Thread-safe holder of every sensor's state; all decisions go through the pure functions above."""

    def __init__(self, sensors: list[str], thresholds: LivenessThresholds):
        self.thresholds = thresholds
        self._states = {name: SensorState() for name in sensors}
        self._lock = threading.Lock()

    @property
    def sensors(self) -> list[str]:
        return list(self._states)

    def beat(self, name: str, t: float, issue: str | None = None) -> None:
        with self._lock:
            self._states[name] = after_beat(self._states[name], t, issue, self.thresholds)

    def end(self, name: str, t: float) -> None:
        with self._lock:
            self._states[name] = replace(self._states[name], ended_at=t)

    def set_muted(self, name: str, muted: bool, t: float) -> None:
        with self._lock:
            state = self._states[name]
            # Unmuting restarts recovery: data from before the mute says nothing about now.
            self._states[name] = replace(state, muted=muted, good_since=state.good_since if muted else t)

    def is_muted(self, name: str) -> bool:
        with self._lock:
            return self._states[name].muted

    def states(self) -> dict[str, SensorState]:
        with self._lock:
            return dict(self._states)

    def verdicts(self, now: float) -> dict[str, Verdict]:
        states = self.states()
        live = live_set(states, now, self.thresholds)
        out = {}
        for name, s in states.items():
            v = judge(s, now, self.thresholds)
            if name == "flow" and "rgb" not in live and v.reason not in ("muted", "ended"):
                v = Verdict(False, "camera not live")
            elif v.alive and name not in live:
                v = Verdict(False, "behind the camera")
            out[name] = v
        return out

    def live(self, now: float) -> frozenset[str]:
        return live_set(self.states(), now, self.thresholds)
