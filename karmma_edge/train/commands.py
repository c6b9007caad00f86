"""`karmma-edge train ...`, `eval` and `reproduce`. torch is imported inside each command, not at import time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from karmma_edge.cli_options import DATA_HELP, SPLIT_HELP, HeldOutSplit, choice_enum, value
from karmma_edge.presets import resolve_config
from karmma_edge.train.registry import EXTRACTORS, STUDENT, list_models
from karmma_edge.train.reproduce import PRESETS

app = typer.Typer(no_args_is_help=True, help=(
    "Train extractors, the teacher or the student.\n\n"
    f"A config's `model` names a registered model: students {', '.join(list_models(STUDENT))}; "
    f"extractors {', '.join(list_models(EXTRACTORS))}."))

CONFIG = typer.Option(..., "--config", help="YAML training config: a file, or a packaged preset such as "
                      "`student-demo` (see karmma_edge/configs/)", callback=lambda v: v and resolve_config(v))
OUT = typer.Option(..., "--out", help="run directory to write (an unfinished one resumes)")
DATA = typer.Option(None, "--data", help=f"{DATA_HELP} (overrides the config's `data`)")
SEED = typer.Option(None, "--seed", help="seed (overrides the config's `seed`)")
ReproducePreset = choice_enum("ReproducePreset", PRESETS)


@app.command("extractors")
def train_extractors_cmd(config: Path = CONFIG, out: Path = OUT, data: Optional[Path] = DATA,
                         seed: Optional[int] = SEED) -> None:
    """Pre-train the teacher's per-modality extractors (frozen afterwards), or with a student `model` that
    student's own encoders (a student config's `init_extractors` loads them)."""
    from karmma_edge.train.config import ExtractorsConfig, load_config
    from karmma_edge.train.pretrain import train_extractors

    info = train_extractors(load_config(config, ExtractorsConfig, data=data, seed=seed), out)
    typer.echo(f"{out}: held-out action top-1 per modality "
               + ", ".join(f"{k.split('_')[0]} {v:.1f}%" for k, v in info["metrics"].items() if k.endswith("top1")))


@app.command("teacher")
def train_teacher_cmd(config: Path = CONFIG, out: Path = OUT, data: Optional[Path] = DATA,
                      seed: Optional[int] = SEED,
                      extractors: Optional[Path] = typer.Option(None, "--extractors", help="a `train extractors` run")) -> None:
    """Train the teacher's fusion block on frozen extractors' cached tokens."""
    from karmma_edge.train.config import TeacherConfig, load_config
    from karmma_edge.train.teacher import train_teacher

    info = train_teacher(load_config(config, TeacherConfig, data=data, seed=seed, extractors=extractors), out)
    typer.echo(f"{out}: held-out action top-1 {info['metrics'].get('action_top1', float('nan')):.1f}%")


@app.command("student")
def train_student_cmd(config: Path = CONFIG, out: Path = OUT, data: Optional[Path] = DATA,
                      seed: Optional[int] = SEED,
                      teacher: Optional[Path] = typer.Option(None, "--teacher", help="teacher run: distil (KARMMA_S)"),
                      init_extractors: Optional[Path] = typer.Option(
                          None, "--init-extractors", help="a `train extractors` run of this student's model: "
                          "start from its pre-trained encoders")) -> None:
    """Train the student: cross-entropy with modality dropout, or distilled from --teacher; from
    pre-trained encoders with --init-extractors."""
    from karmma_edge.train import distributed
    from karmma_edge.train.config import TrainConfig, load_config
    from karmma_edge.train.loop import train_student

    info = train_student(load_config(config, TrainConfig, data=data, seed=seed, teacher=teacher,
                                     init_extractors=init_extractors), out)
    if distributed.is_main():
        m = info["metrics"]
        heads = f" (verb {m['verb_top1']:.1f}, noun {m['noun_top1']:.1f})" if "verb_top1" in m else ""
        typer.echo(f"{out}: held-out action top-1 {m['action_top1']:.1f}%{heads}")


def eval_cmd(run: Path = typer.Option(..., "--run", help="student or teacher run directory"),
             json_out: Optional[Path] = typer.Option(None, "--json", help="write the results here"),
             draws: int = typer.Option(20, "--draws", min=1, help="seeded draws per drop probability"),
             report: Optional[Path] = typer.Option(None, "--report", help="directory for per_class.csv and "
                                                   "confusion.png (all modalities); default RUN/eval"),
             split: Optional[HeldOutSplit] = typer.Option(None, "--split", help=SPLIT_HELP)) -> None:
    """Top-1, top-5 and mean class accuracy for every subset of modalities, the drop-probability curve,
    and per-class accuracy with a confusion matrix, on a held-out split (test where the data has one)."""
    from karmma_edge.train.evaluate import evaluate_run
    from karmma_edge.train.reproduce import _label

    report = report or run / "eval"
    result = evaluate_run(run, draws, report_dir=report, split=value(split))
    typer.echo(f"{result['method']} on the {result['split']} split ({result['clips']} clips)")
    for profile, r in result["subsets"].items():
        heads = (f"  verb {r['verb_top1']:5.1f}  noun {r['noun_top1']:5.1f}" if "verb_top1" in r else "")
        typer.echo(f"{_label(profile):>6}  action top-1 {r['action_top1']:5.1f}  top-5 {r['action_top5']:5.1f}  "
                   f"mean class {r['action_mean_class']:5.1f}{heads}")
    typer.echo("p      " + " ".join(f"{p:>5}" for p in result["curve"]))
    typer.echo("action " + " ".join(f"{v:5.1f}" for v in result["curve"].values()))
    typer.echo(f"per-class accuracy and confusion matrix: {report / 'per_class.csv'}, {report / 'confusion.png'}")
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


def reproduce_cmd(preset: ReproducePreset = typer.Option(ReproducePreset.demo, "--preset", help="data and training "
                                                          "sizes, smallest first"),
                  seed: int = typer.Option(0, "--seed", help="seeds the data and every training run"),
                  out: Path = typer.Option(..., "--out", help="directory for data, runs and results"),
                  threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads"),
                  data: Optional[Path] = typer.Option(None, "--data", help=f"{DATA_HELP} to use instead of "
                                                      "synthesizing the preset's")) -> None:
    """Data, extractors, teacher, baselines, the pre-trained control and KARMMA_S, evaluation on the test
    split (validation where the data has none): paper-style tables and plots."""
    import logging

    from karmma_edge.train.reproduce import reproduce

    logging.getLogger("karmma_edge").setLevel(logging.INFO)
    reproduce(preset.value, out, seed, threads=threads, data=data)
    typer.echo((out / "results.md").read_text())


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="train")
    root.command("eval")(eval_cmd)
    root.command("reproduce")(reproduce_cmd)
