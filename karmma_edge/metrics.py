"""Top-1 accuracy of verb, noun and action (action correct when verb and noun both are). No torch."""

from __future__ import annotations

import numpy as np


def top1(verb_logits: np.ndarray, noun_logits: np.ndarray, verb: np.ndarray, noun: np.ndarray) -> dict[str, float]:
    """Percentages, as the paper reports them."""
    v_ok = np.asarray(verb_logits).argmax(axis=1) == np.asarray(verb)
    n_ok = np.asarray(noun_logits).argmax(axis=1) == np.asarray(noun)
    return {
        "action_top1": float(100.0 * np.mean(v_ok & n_ok)),
        "verb_top1": float(100.0 * np.mean(v_ok)),
        "noun_top1": float(100.0 * np.mean(n_ok)),
    }
