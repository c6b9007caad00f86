"""Accuracy of verb, noun and action, or of a single action label (no torch).

A model has the label heads of its dataset (`label_heads`): EPIC-KITCHENS has verb and noun heads and
an action is a (verb, noun) pair, correct when both are and scored p(verb) * p(noun); Something-
Something has one action label and one `action` head. Logits and labels travel as dicts keyed by head.
"""

from __future__ import annotations

import numpy as np

TOP_K = 5


def label_heads(classes: dict[str, list[str]]) -> dict[str, int]:
    """Head name -> number of classes: verb and noun when the dataset has nouns, else one action head."""
    if classes.get("noun"):
        return {"verb": len(classes["verb"]), "noun": len(classes["noun"])}
    return {"action": len(classes["action"] if "action" in classes else classes["verb"])}


def dataset_classes(ds) -> dict[str, list[str]]:
    """A reader's class lists by label head: verb and noun, or SSv2's single label as `action`."""
    if ds.noun_classes:
        return {"verb": list(ds.verb_classes), "noun": list(ds.noun_classes)}
    return {"action": list(ds.verb_classes)}


def head_labels(heads, verb: np.ndarray, noun: np.ndarray) -> dict[str, np.ndarray]:
    """The readers' (verb, noun) labels as per-head labels; a single-label dataset keeps it in `verb`."""
    return {"action": np.asarray(verb)} if tuple(heads) == ("action",) else {"verb": np.asarray(verb),
                                                                              "noun": np.asarray(noun)}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def action_ranks(logits: dict[str, np.ndarray], k: int, chunk: int = 256) -> np.ndarray:
    """int [N, k] action classes in order of score; an EPIC action is verb * num_nouns + noun."""
    if "action" in logits:
        return np.argsort(-np.asarray(logits["action"]), axis=1, kind="stable")[:, :k]
    lv, ln = _log_softmax(logits["verb"]), _log_softmax(logits["noun"])
    out = np.empty((len(lv), min(k, lv.shape[1] * ln.shape[1])), np.int64)
    for s in range(0, len(lv), chunk):       # the joint table of EPIC-100 is 29,100 wide: chunked
        joint = (lv[s:s + chunk, :, None] + ln[s:s + chunk, None, :]).reshape(len(lv[s:s + chunk]), -1)
        out[s:s + chunk] = np.argsort(-joint, axis=1, kind="stable")[:, :out.shape[1]]
    return out


def action_labels(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> np.ndarray:
    if "action" in labels:
        return np.asarray(labels["action"])
    return np.asarray(labels["verb"]) * np.asarray(logits["noun"]).shape[1] + np.asarray(labels["noun"])


def action_correct(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> np.ndarray:
    """bool [N]: the action's top-1 is right; for verb and noun heads, both are (the argmax pair of
    p(v) p(n))."""
    if "action" in logits:
        return np.asarray(logits["action"]).argmax(axis=1) == np.asarray(labels["action"])
    return ((np.asarray(logits["verb"]).argmax(axis=1) == np.asarray(labels["verb"]))
            & (np.asarray(logits["noun"]).argmax(axis=1) == np.asarray(labels["noun"])))


def action_top1(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> float:
    """Action top-1 in percent."""
    return float(100.0 * np.mean(action_correct(logits, labels)))


def mean_class_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Top-1 recall of each class present in `target`, averaged over those classes (percent)."""
    classes = np.unique(target)
    return float(100.0 * np.mean([np.mean(pred[target == c] == c) for c in classes])) if len(classes) else 0.0


def scores(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray], k: int = TOP_K) -> dict[str, float]:
    """Percentages, as the papers report them: top-1, top-k and mean class accuracy of every head and
    of the action."""
    out: dict[str, float] = {}
    ranks = action_ranks(logits, k)
    target = action_labels(logits, labels)
    out["action_top1"] = action_top1(logits, labels)
    out[f"action_top{k}"] = float(100.0 * np.mean((ranks == target[:, None]).any(axis=1)))
    out["action_mean_class"] = mean_class_accuracy(ranks[:, 0], target)
    for head in ("verb", "noun"):
        if head in logits:
            x, y = np.asarray(logits[head]), np.asarray(labels[head])
            top = np.argsort(-x, axis=1, kind="stable")[:, :k]
            out[f"{head}_top1"] = float(100.0 * np.mean(top[:, 0] == y))
            out[f"{head}_top{k}"] = float(100.0 * np.mean((top == y[:, None]).any(axis=1)))
            out[f"{head}_mean_class"] = mean_class_accuracy(top[:, 0], y)
    return out


def top1(verb_logits: np.ndarray, noun_logits: np.ndarray, verb: np.ndarray, noun: np.ndarray) -> dict[str, float]:
    """Action, verb and noun top-1 of a verb/noun model in percent (the accuracy gate's figures)."""
    v_ok = np.asarray(verb_logits).argmax(axis=1) == np.asarray(verb)
    n_ok = np.asarray(noun_logits).argmax(axis=1) == np.asarray(noun)
    return {
        "action_top1": float(100.0 * np.mean(v_ok & n_ok)),
        "verb_top1": float(100.0 * np.mean(v_ok)),
        "noun_top1": float(100.0 * np.mean(n_ok)),
    }


def per_class_rows(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray], names: list[str],
                   k: int = TOP_K) -> list[dict]:
    """One row per action class present in `labels`: name, clips, top-1 and top-k accuracy (percent)."""
    ranks = action_ranks(logits, k)
    target = action_labels(logits, labels)
    rows = []
    for c in np.unique(target):
        sel = target == c
        rows.append({"class_id": int(c), "name": names[int(c)], "clips": int(sel.sum()),
                     "top1": float(100.0 * np.mean(ranks[sel, 0] == c)),
                     f"top{k}": float(100.0 * np.mean((ranks[sel] == c).any(axis=1)))})
    return rows


def action_names(classes: dict[str, list[str]]) -> list[str]:
    """Action class names in the order `action_labels` numbers them."""
    if not classes.get("noun"):
        return list(classes.get("action") or classes["verb"])
    return [f"{v} {n}" for v in classes["verb"] for n in classes["noun"]]
