"""`karmma-edge data ...`: synthesize, inspect and check datasets. Heavy imports stay inside commands."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Datasets: make the synthetic benchmark, inspect a segment, check a tree.", no_args_is_help=True)


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Directory to write (must not exist, or be empty)."),
    preset: str = typer.Option("tiny", "--preset", help="tiny (tests, seconds) | demo (trains in minutes) | full."),
    seed: int = typer.Option(0, "--seed", help="The same seed gives a byte-identical dataset."),
    force: bool = typer.Option(False, "--force", help="Replace a previous synthetic dataset at --out."),
) -> None:
    """Write the synthetic egocentric benchmark in EPIC-KITCHENS-100 layout."""
    from karmma_edge.data.synth.generate import synthesize

    root = synthesize(out, preset=preset, seed=seed, progress=True, force=force)
    typer.echo(f"wrote {root}")
