"""The atomic-write helpers, and `data synth --force` replacing a dataset only once the new one is whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from karmma_edge.atomic import atomic_directory, atomic_file, atomic_write
from karmma_edge.data.synth import generate


def _old_dataset(root: Path) -> Path:
    root.mkdir()
    (root / generate.MARKER).write_text(json.dumps({"seed": 7}))
    (root / "EPIC_100_train.csv").write_text("old rows\n")
    return root


def test_synth_force_failure_midway_leaves_old_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _old_dataset(tmp_path / "data")

    def half_then_fail(root: Path, *args) -> None:
        (root / "EPIC_100_train.csv").write_text("new rows\n")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(generate, "_write_all", half_then_fail)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        generate.synthesize(out, force=True, progress=False)
    assert (out / "EPIC_100_train.csv").read_text() == "old rows\n"
    assert json.loads((out / generate.MARKER).read_text()) == {"seed": 7}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_synth_force_replaces_old_dataset_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _old_dataset(tmp_path / "data")
    seen_during_write: list[str] = []

    def write_new(root: Path, *args) -> None:
        seen_during_write.append((out / "EPIC_100_train.csv").read_text())   # the old one is still there
        (root / generate.MARKER).write_text(json.dumps({"seed": 0}))

    monkeypatch.setattr(generate, "_write_all", write_new)
    generate.synthesize(out, force=True, progress=False)
    assert seen_during_write == ["old rows\n"]
    assert json.loads((out / generate.MARKER).read_text()) == {"seed": 0}
    assert not (out / "EPIC_100_train.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_atomic_file_keeps_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write(target, "old")
    with pytest.raises(ValueError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert target.read_text() == "old"
    atomic_write(target, b"new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_atomic_directory_restores_old_copy_after_kill_between_renames(tmp_path: Path) -> None:
    final = tmp_path / "bundle"
    with atomic_directory(final) as d:
        (d / "a").write_text("1")
    # What a kill after `rename(final, old)` and before `rename(tmp, final)` leaves behind.
    final.rename(tmp_path / ".bundle.tmp-old-123")
    with pytest.raises(KeyError):
        with atomic_directory(final):
            raise KeyError
    assert (final / "a").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
