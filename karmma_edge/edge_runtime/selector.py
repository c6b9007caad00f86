"""Which engine to run for the sensors that are live now."""

from __future__ import annotations

from collections.abc import Iterable

from karmma_edge.profiles import MODALITIES, parse_profile, profile_name


class ProfileSelector:
    """Maps a set of live sensors to the best bundled profile.

    The best profile is the live set itself when the bundle has it, else the bundled profile with the
    most live modalities that uses no dead one (ties broken by canonical order). A live set that no
    bundled profile fits gives None: nothing can run.

    `select` is stateless. `update` adds hysteresis for the daemon: losing a modality the current
    profile uses switches at once (its input is gone), while a better profile must stay the choice
    for `upgrade_hold_s` before it is taken, so a flickering sensor cannot make the runtime flap.
    """

    def __init__(self, profiles: Iterable[str], upgrade_hold_s: float = 0.0):
        self._profiles = {p: frozenset(parse_profile(p)) for p in profiles}
        if not self._profiles:
            raise ValueError("ProfileSelector needs at least one profile")
        self.upgrade_hold_s = upgrade_hold_s
        self.current: str | None = None
        self._candidate: str | None = None
        self._candidate_since = 0.0

    @property
    def profiles(self) -> list[str]:
        return list(self._profiles)

    def select(self, live: Iterable[str]) -> str | None:
        live_set = frozenset(m for m in live if m in MODALITIES)
        if not live_set:
            return None
        exact = profile_name(live_set)
        if exact in self._profiles:
            return exact
        fitting = [p for p, mods in self._profiles.items() if mods <= live_set]
        if not fitting:
            return None
        return max(fitting, key=lambda p: (len(self._profiles[p]), -self.profiles.index(p)))

    def update(self, live: Iterable[str], now: float) -> str | None:
        """The profile to run now, given the live sensors at time `now` (monotonic seconds)."""
        live_set = frozenset(live)
        target = self.select(live_set)
        if target == self.current:
            self._candidate = None
            return self.current
        if self.current is None or target is None or not self._profiles[self.current] <= live_set:
            self.current, self._candidate = target, None
            return self.current
        if target != self._candidate:
            self._candidate, self._candidate_since = target, now
        if now - self._candidate_since >= self.upgrade_hold_s:
            self.current, self._candidate = target, None
        return self.current
