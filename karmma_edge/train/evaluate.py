"""`karmma-edge eval`: top-1 on every subset of modalities and under random missing modalities.

The curve drops each modality independently with probability p (at least one kept), per clip,
averaged over a fixed number of seeded draws. A model's prediction for a clip depends only on that
clip and its subset (evaluation mode), so each clip takes the logits of its drawn subset from the
per-subset pass; the test of learned tokens vs. dropped masks shows the two are the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from karmma_edge.metrics import top1
from karmma_edge.profiles import all_profiles, parse_profile, profile_name
from karmma_edge.train.loop import draw_present

P_VALUES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))
DRAWS = 20

# (clip index, present modalities) -> (verb logits, noun logits)
Forward = Callable[[np.ndarray, tuple[str, ...]], tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def subset_logits(forward: Forward, n: int, modalities: tuple[str, ...], batch_size: int = 64):
    out = {}
    for profile in all_profiles(modalities):
        mods = parse_profile(profile, modalities)
        verbs, nouns = [], []
        for start in range(0, n, batch_size):
            v, nn_ = forward(np.arange(start, min(start + batch_size, n)), mods)
            verbs.append(v.cpu().numpy())
            nouns.append(nn_.cpu().numpy())
        out[profile] = (np.concatenate(verbs), np.concatenate(nouns))
    return out


def curve(logits: dict, verb: np.ndarray, noun: np.ndarray, modalities: tuple[str, ...],
          draws: int = DRAWS, seed: int = 0) -> dict[str, float]:
    """Action top-1 against the drop probability p, mean over `draws` seeded draws per p."""
    n = len(verb)
    result = {}
    for i, p in enumerate(P_VALUES):
        accs = []
        for d in range(draws):
            gen = torch.Generator().manual_seed(seed * 1_000_003 + i * 1000 + d)
            present = draw_present(n, len(modalities), p, gen).numpy()
            names = [profile_name([m for m, keep in zip(modalities, row) if keep]) for row in present]
            v = np.stack([logits[name][0][k] for k, name in enumerate(names)])
            nn_ = np.stack([logits[name][1][k] for k, name in enumerate(names)])
            accs.append(top1(v, nn_, verb, noun)["action_top1"])
        result[f"{p:.1f}"] = float(np.mean(accs))
    return result


def evaluate_forward(forward: Forward, verb: np.ndarray, noun: np.ndarray, modalities: tuple[str, ...],
                     draws: int = DRAWS, seed: int = 0) -> dict:
    logits = subset_logits(forward, len(verb), modalities)
    return {"subsets": {p: top1(v, n, verb, noun) for p, (v, n) in logits.items()},
            "curve": curve(logits, verb, noun, modalities, draws, seed)}


def evaluate_run(run_dir: Path, draws: int = DRAWS, seed: int = 0, progress: bool = True) -> dict:
    """Held-out evaluation of a student or teacher run on the validation split of its dataset."""
    from karmma_edge.errors import KarmmaError
    from karmma_edge.inputs import InputSpec
    from karmma_edge.train.runs import read_run_info

    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    root, fmt = Path(info["data"]["root"]), info["data"]["format"]
    if info["kind"] == "teacher":
        from karmma_edge.train.teacher import labels, load_teacher, teacher_sources
        from karmma_edge.train.tokens import split_tokens

        teacher, info = load_teacher(run_dir)
        spec = InputSpec.from_dict(info["input_spec"])
        tokens = split_tokens(teacher_sources(info), root, "validation", fmt, spec, Path(info["cache_dir"]), progress)
        _, verb, noun = labels(root, "validation", fmt, spec)

        def forward(index, mods):
            return teacher({m: torch.from_numpy(tokens[m][index]) for m in mods})

        modalities = teacher.modalities
    elif info["kind"] == "student":
        from karmma_edge.data.arrays import load_split
        from karmma_edge.train.loop import batch_inputs
        from karmma_edge.train.runs import load_student

        student, info = load_student(run_dir)
        cache = Path(info["config"].get("cache_dir") or run_dir / "cache")
        val = load_split(root, "validation", student.spec, fmt, cache_dir=cache, progress=progress,
                         description="decoding held-out clips")
        verb, noun = val.verb, val.noun

        def forward(index, mods):
            return student(batch_inputs(val, index, mods))

        modalities = student.modalities
    else:
        raise KarmmaError(f"{run_dir} is a {info['kind']} run; eval takes a student or teacher run")
    result = evaluate_forward(forward, verb, noun, tuple(modalities), draws, seed)
    return {"run": str(run_dir), "method": info.get("method", info["kind"]), "draws": draws, **result}
