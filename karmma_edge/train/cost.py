"""Inference cost per subset of modalities: FLOPs from torch's own counter, parameters counted.

A profile's model holds the present modalities' extractors and the fusion block (missing ones are
learned constants), so that is what each profile's FLOPs and parameters cover.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from karmma_edge.profiles import all_profiles, parse_profile
from karmma_edge.train.models import Student


def count_flops(fn, *args) -> int:
    # Not under no_grad: the counter's module tracker hooks autograd and fails without it.
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


def dummy_input(spec, modality: str) -> torch.Tensor:
    shape = (1, *spec.input_shape(modality))
    return torch.zeros(shape, dtype=torch.uint8 if spec.input_dtype(modality) == "uint8" else torch.float32)


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def student_cost(student: Student) -> dict[str, dict]:
    student.eval()
    out = {}
    for profile in all_profiles(student.modalities):
        mods = parse_profile(profile, student.modalities)
        flops = count_flops(student, {m: dummy_input(student.spec, m) for m in mods})
        params = numel(student.fusion) + sum(numel(student.extractors[m]) for m in mods)
        out[profile] = {"gflops": flops / 1e9, "params": params}
    return out


def teacher_cost(teacher, sources: dict, spec) -> dict[str, dict]:
    """FLOPs of the extractors (None for a non-torch extractor) plus the fusion on their tokens."""
    teacher.eval()
    ext_flops, tokens = {}, {}
    for m, source in sources.items():
        x = dummy_input(source.spec or spec, m)
        net = source.module()
        ext_flops[m] = count_flops(net, x) if net is not None else None
        tokens[m] = torch.from_numpy(source.tokens(x.numpy()))
    out = {}
    for profile in all_profiles(teacher.modalities):
        mods = parse_profile(profile, teacher.modalities)
        fusion = count_flops(teacher, {m: tokens[m] for m in mods})
        known = all(ext_flops[m] is not None for m in mods)
        flops = fusion + sum(ext_flops[m] for m in mods) if known else None
        params = numel(teacher) + sum(sources[m].num_params() for m in mods)
        out[profile] = {"gflops": None if flops is None else flops / 1e9, "params": params}
    return out
