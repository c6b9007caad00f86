"""`karmma-edge train ...` commands. torch is imported inside each command, not at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, help="Train extractors, the teacher or the student.")


@app.command("student")
def train_student_cmd(
    config: Path = typer.Option(..., "--config", help="YAML training config (see configs/)"),
    out: Path = typer.Option(..., "--out", help="run directory to write"),
    data: Optional[Path] = typer.Option(None, "--data", help="dataset root (overrides the config's `data`)"),
    seed: Optional[int] = typer.Option(None, "--seed"),
) -> None:
    """Train the student with cross-entropy and modality dropout."""
    from karmma_edge.train.config import load_config
    from karmma_edge.train.loop import train_student

    cfg = load_config(config, data=data, seed=seed)
    info = train_student(cfg, out)
    m = info["metrics"]
    typer.echo(f"{out}: held-out action top-1 {m['action_top1']:.1f}% "
               f"(verb {m['verb_top1']:.1f}, noun {m['noun_top1']:.1f})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="train")
