"""Modalities and modality-availability profiles (DESIGN section 3). No torch here."""

from __future__ import annotations

from itertools import combinations
from typing import Iterable

from karmma_edge.errors import KarmmaError

MODALITIES: tuple[str, ...] = ("rgb", "flow", "audio")


def _check_modalities(modalities: Iterable[str]) -> tuple[str, ...]:
    mods = tuple(modalities)
    unknown = [m for m in mods if m not in MODALITIES]
    if unknown:
        raise KarmmaError(f"unknown modality {unknown[0]!r}; valid modalities: {', '.join(MODALITIES)}")
    return mods


def profile_name(modalities: Iterable[str]) -> str:
    """Canonical name of a set of modalities: members joined by '+' in canonical order."""
    mods = set(_check_modalities(modalities))
    if not mods:
        raise KarmmaError("a profile needs at least one modality")
    return "+".join(m for m in MODALITIES if m in mods)


def parse_profile(name: str, allowed: Iterable[str] = MODALITIES) -> tuple[str, ...]:
    """Modalities of a profile name, in canonical order; any order and case of members is accepted."""
    allowed = tuple(allowed)
    parts = [p.strip().lower() for p in name.split("+")]
    if not name.strip() or any(not p for p in parts):
        raise KarmmaError(f"invalid profile {name!r}: join modalities with '+', e.g. rgb+audio")
    _check_modalities(parts)
    missing = [p for p in parts if p not in allowed]
    if missing:
        raise KarmmaError(
            f"profile {name!r} uses {missing[0]!r}, which this model does not have; "
            f"its modalities: {', '.join(allowed)}"
        )
    return tuple(m for m in MODALITIES if m in parts)


def all_profiles(modalities: Iterable[str] = MODALITIES) -> list[str]:
    """Every non-empty subset, largest first, each in canonical order."""
    mods = [m for m in MODALITIES if m in set(_check_modalities(modalities))]
    out = []
    for k in range(len(mods), 0, -1):
        out.extend(profile_name(c) for c in combinations(mods, k))
    return out


def expand_profiles(spec: str, modalities: Iterable[str] = MODALITIES) -> list[str]:
    """`all`, one profile, or a comma-separated list of profiles -> canonical names, no repeats."""
    modalities = tuple(modalities)
    if spec.strip().lower() == "all":
        return all_profiles(modalities)
    names: list[str] = []
    for part in spec.split(","):
        name = profile_name(parse_profile(part, modalities))
        if name not in names:
            names.append(name)
    return names
