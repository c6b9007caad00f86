"""Extractor tokens computed once per split and cached on disk.

The key is the extractor's checksum plus everything that decides which samples it saw (dataset,
split, clip-sampling spec, evaluation-mode sampling), so the teacher and the distilled student read
tokens from disk and never rerun an extractor; a retrained or replaced extractor gets new tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from karmma_edge.inputs import InputSpec
from karmma_edge.train.extractors import TokenSource


def token_path(source: TokenSource, root: Path, split: str, fmt: str, spec: InputSpec, cache_dir: Path) -> Path:
    key = hashlib.sha256(json.dumps(
        {"extractor": source.checksum, "root": str(Path(root).resolve()), "split": split, "format": fmt,
         "spec": spec.to_dict(), "sampling": "eval"}, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(cache_dir) / "tokens" / f"{split}-{source.modality}-{key}.npy"


def split_tokens(sources: dict[str, TokenSource], root: Path, split: str, fmt: str, spec: InputSpec,
                 cache_dir: Path, progress: bool = True, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Per modality float32 [N, n, D] for every clip of the split, in the split's order."""
    paths = {m: token_path(s, root, split, fmt, spec, cache_dir) for m, s in sources.items()}
    missing = [m for m, p in paths.items() if not p.is_file()]
    if missing:
        from rich.progress import Progress

        from karmma_edge.data.arrays import load_split

        arrays = load_split(root, split, spec, fmt, cache_dir=cache_dir, progress=progress,
                            description=f"decoding {split} clips")
        with Progress(disable=not progress, transient=True) as bar:
            for m in missing:
                x = arrays.inputs[m]
                task = bar.add_task(f"{m} tokens of {split}", total=len(x))
                parts = []
                for start in range(0, len(x), batch_size):
                    parts.append(sources[m].tokens(x[start:start + batch_size]))
                    bar.advance(task, len(parts[-1]))
                paths[m].parent.mkdir(parents=True, exist_ok=True)
                tmp = paths[m].with_name(f".{paths[m].name}.tmp.npy")
                np.save(tmp, np.concatenate(parts))
                os.replace(tmp, paths[m])
    return {m: np.load(p) for m, p in paths.items()}
