"""`karmma-edge data ...`: synthesize, inspect and check datasets. Heavy imports stay inside commands."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Datasets: make the synthetic benchmark, inspect a segment, check a tree.", no_args_is_help=True)


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Directory to write (must not exist, or be empty)."),
    preset: str = typer.Option("tiny", "--preset", help="tiny (tests, seconds) | demo (trains in minutes) | full | scale (20,004 small training clips)."),
    seed: int = typer.Option(0, "--seed", help="The same seed gives a byte-identical dataset."),
    force: bool = typer.Option(False, "--force", help="Replace a previous synthetic dataset at --out."),
    layout: str = typer.Option("folders", "--layout", help="folders (frame JPEG files) | tar (EPIC's per-video tars; far fewer files)."),
    fmt: str = typer.Option("epic100", "--format", help="epic100 | ssv2 (one .webm per clip, one action label, no audio)."),
) -> None:
    """Write the synthetic egocentric benchmark in EPIC-KITCHENS-100 (or Something-Something v2) layout."""
    from karmma_edge.data.synth.generate import synthesize

    root = synthesize(out, preset=preset, seed=seed, progress=True, force=force, layout=layout, fmt=fmt)
    typer.echo(f"wrote {root}")


@app.command()
def inspect(
    root: Path = typer.Option(..., "--root", help="Dataset root."),
    segment_id: str = typer.Option(..., "--id", help="Segment id (EPIC narration_id, or SSv2 video id)."),
    out: Path = typer.Option(..., "--out", help="The .npz to write."),
    fmt: str = typer.Option("epic100", "--format", help="epic100 (also the synthetic data) | ssv2."),
    frames: int = typer.Option(8, "--frames", help="T frames per clip."),
    size: str = typer.Option("64x64", "--size", help="Model input WIDTHxHEIGHT (frames are resized, never cropped)."),
    audio_seconds: float = typer.Option(1.0, "--audio-seconds", help="Audio window centred on the segment."),
    sample_rate: int = typer.Option(24000, "--sample-rate", help="Audio rate the model expects."),
) -> None:
    """Write the exact evaluation-mode arrays a model receives for one segment."""
    from karmma_edge.data.inspect import inspect_segment
    from karmma_edge.errors import ConfigError
    from karmma_edge.inputs import InputSpec

    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 64x64") from None
    spec = InputSpec(frames=frames, height=height, width=width, audio_seconds=audio_seconds, sample_rate=sample_rate)
    arrays = inspect_segment(root, segment_id, out, spec, fmt)
    for key, value in arrays.items():
        typer.echo(f"{key:<12} {str(value.dtype):<8} {list(value.shape)}")
    typer.echo(f"wrote {out}")


@app.command()
def check(
    root: Path = typer.Option(..., "--root", help="Dataset root."),
    fmt: str = typer.Option("epic100", "--format", help="epic100 (also the synthetic data) | ssv2."),
    decode: bool = typer.Option(False, "--decode", help="Also decode every JPEG (slower; default checks markers)."),
) -> None:
    """Validate a dataset: list every missing or unreadable file with the segments that need it."""
    from karmma_edge.data.check import check_dataset
    from karmma_edge.errors import DataError

    report = check_dataset(root, fmt=fmt, decode=decode, progress=True)
    for line in report.lines():
        typer.echo(line)
    if report.problems:
        raise DataError(f"{root}: {len(report.problems)} problem(s) listed above; restore those files "
                        "(or drop the segments from the CSV) and run the check again")
    typer.echo(f"ok: {report.segments} segments in {', '.join(report.splits)}; every file present and readable")
