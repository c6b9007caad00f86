"""Which engine to run for the sensors that are live now."""

from __future__ import annotations

from collections.abc import Iterable

from karmma_edge.profiles import MODALITIES, parse_profile, profile_name


class ProfileSelector:
    """Maps a set of live sensors to the best bundled profile.

    The best profile is the live set itself when the bundle has it, else the bundled profile with the
    most live modalities that uses no dead one (ties broken by canonical order). A live set that no
    bundled profile fits gives None: nothing can run.
    """

    def __init__(self, profiles: Iterable[str]):
        self._profiles = {p: frozenset(parse_profile(p)) for p in profiles}
        if not self._profiles:
            raise ValueError("ProfileSelector needs at least one profile")

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
