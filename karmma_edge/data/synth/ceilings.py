"""The best action top-1 any recogniser can reach on the synthetic data from each subset of
modalities, by construction (before the degradations, which only lower it).

The class is (verb, shape, material) and the cues of the three factors are drawn independently, so
the Bayes-optimal accuracy is the product of each factor's:
- verb: motion (rgb, flow) names it; audio names its rhythm, shared by a pair of verbs, and on a
  share `audio_verb` of clips also which of the pair (else a coin toss within the pair).
- shape: the silhouette (rgb, flow; flow sees the moving outline); audio cannot tell.
- material: audio's timbre names it; rgb shows it on a share `rgb_material` (texture) and both rgb
  and flow on a share `motion_material` (vigour of the handling); otherwise a guess among materials.
A cue that one material lacks (e.g. plain "unseen" looks like a texture-less material) gives the
same accuracy as a symmetric one: seen -> right; unseen -> a guess among the rest.
"""

from __future__ import annotations

from collections import Counter

from karmma_edge.data.synth.plan import classes
from karmma_edge.data.synth.presets import VERBS, Preset
from karmma_edge.profiles import all_profiles


def _verb(p: Preset, present: set[str]) -> float:
    if present & {"rgb", "flow"}:
        return 1.0
    if "audio" not in present:
        return 1.0 / p.n_verbs
    groups = Counter(g for _, _, g in VERBS[: p.n_verbs])
    return sum(n / p.n_verbs * (1.0 if n == 1 else 0.5 + p.audio_verb / 2) for n in groups.values())


def _shape(p: Preset, present: set[str]) -> float:
    return 1.0 if present & {"rgb", "flow"} else 1.0 / p.n_shapes


def _material(p: Preset, present: set[str]) -> float:
    if "audio" in present:
        return 1.0
    unseen = 1.0
    if "rgb" in present:
        unseen *= 1.0 - p.rgb_material
    if present & {"rgb", "flow"}:
        unseen *= 1.0 - p.motion_material
    return 1.0 - unseen * (1.0 - 1.0 / p.n_materials)


def ceilings(p: Preset) -> dict[str, float]:
    """Profile name (`rgb+audio`, ...) -> the highest action top-1 reachable, in percent."""
    classes(p)      # validates that the preset's verbs and nouns exist
    out = {}
    for profile in all_profiles():
        present = set(profile.split("+"))
        out[profile] = 100.0 * _verb(p, present) * _shape(p, present) * _material(p, present)
    return out


def kept_at_half(ceiling: dict[str, float]) -> float:
    """Share of the all-modality ceiling kept when each modality drops with p = 0.5 (one drawn
    uniformly kept when none is left): each pair and the triple 1/8, each single 1/8 + 1/24."""
    full = ceiling["rgb+flow+audio"]
    weight = {prof: (1 / 8 + 1 / 24) if "+" not in prof else 1 / 8 for prof in ceiling}
    return sum(weight[prof] * v for prof, v in ceiling.items()) / full


def markdown() -> str:
    """Every preset's ceilings as a table (`python -m karmma_edge.data.synth.ceilings`)."""
    from karmma_edge.data.synth.presets import PRESETS

    profiles = all_profiles()
    short = {"rgb": "V", "flow": "F", "audio": "A"}
    head = ["preset"] + ["+".join(short[m] for m in p.split("+")) for p in profiles] + ["kept at p = 0.5"]
    rows = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, p in PRESETS.items():
        c = ceilings(p)
        rows.append(f"| {name} | " + " | ".join(f"{c[q]:.1f}" for q in profiles) + f" | {100 * kept_at_half(c):.0f} % |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
