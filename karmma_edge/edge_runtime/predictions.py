"""What one inference yields: verb, noun and action top-k with scores and class names.

A verb/noun model (EPIC-KITCHENS) scores actions as (verb, noun) pairs; a single-label model
(Something-Something) has an `action` output and class list of its own, and no verb or noun.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Scored:
    index: int | tuple[int, int]
    name: str
    score: float


@dataclass(frozen=True)
class Prediction:
    seq: int                    # window sequence number: gaps mean dropped windows
    window_end: float           # wall-clock time (Unix seconds) of the window's newest data
    emitted_at: float           # wall-clock time the prediction was made
    profile: str
    live: list[str]
    latency_ms: float           # engine time for this window
    verb: list[Scored]
    noun: list[Scored]
    action: list[Scored]

    def to_dict(self) -> dict:
        return asdict(self)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    e = np.exp(z)
    return e / e.sum()


def top_k(probs: np.ndarray, names: list[str], k: int) -> list[Scored]:
    order = np.argsort(-probs)[:k]
    return [Scored(int(i), names[i], round(float(probs[i]), 5)) for i in order]


def action_top_k(p_verb: np.ndarray, p_noun: np.ndarray, verbs: list[str], nouns: list[str], k: int) -> list[Scored]:
    """Actions are (verb, noun) pairs scored p(verb) * p(noun): the model has no action head, and its
    action top-1 (verb and noun both right) is the best pair under this score."""
    joint = np.outer(p_verb, p_noun)
    flat = np.argsort(-joint, axis=None)[:k]
    out = []
    for f in flat:
        v, n = np.unravel_index(int(f), joint.shape)
        out.append(Scored((int(v), int(n)), f"{verbs[v]} {nouns[n]}", round(float(joint[v, n]), 5)))
    return out


def head_predictions(out: dict[str, np.ndarray], classes: dict[str, list[str]], k: int
                     ) -> tuple[list[Scored], list[Scored], list[Scored]]:
    """(verb, noun, action) top-k of one window's engine outputs (first row of each)."""
    if "action" in out:
        return [], [], top_k(softmax(out["action"][0]), classes["action"], k)
    verbs, nouns = classes["verb"], classes["noun"]
    p_verb, p_noun = softmax(out["verb"][0]), softmax(out["noun"][0])
    return top_k(p_verb, verbs, k), top_k(p_noun, nouns, k), action_top_k(p_verb, p_noun, verbs, nouns, k)
