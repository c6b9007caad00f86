"""User errors exit 2 with a message that names the file or option and the fix, never a traceback."""

from conftest import karmma_cli


def test_build_with_missing_run_names_the_path():
    r = karmma_cli("build", "--run", "/no/such/dir", "--profile", "all", "--out", "x")
    assert r.returncode == 2
    assert "/no/such/dir" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_build_with_unknown_modality_names_the_valid_ones(tmp_path):
    r = karmma_cli("build", "--run", str(tmp_path), "--profile", "rgb+smell", "--out", str(tmp_path / "b"))
    assert r.returncode == 2
    assert "smell" in r.stderr and "rgb, flow, audio" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "b").exists()


def test_bench_with_missing_bundle_names_it(tmp_path):
    r = karmma_cli("bench", "--bundle", str(tmp_path / "nope"), "--data", str(tmp_path), "--out", str(tmp_path / "r"))
    assert r.returncode == 2
    assert str(tmp_path / "nope") in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_split_test_on_data_without_one_names_the_option_and_the_fix(tiny_bundle, tiny_data_root, tmp_path):
    """EPIC-KITCHENS-100 withholds its test labels: `--split test` on such a tree is refused up front."""
    stripped = tmp_path / "no-test"
    stripped.mkdir()
    for entry in tiny_data_root.iterdir():
        if entry.name != "KARMMA_test.csv":
            (stripped / entry.name).symlink_to(entry)
    r = karmma_cli("bench", "--bundle", str(tiny_bundle), "--data", str(stripped), "--split", "test",
                   "--out", str(tmp_path / "r"))
    assert r.returncode == 2
    assert "--split test" in r.stderr and "no labelled test split" in r.stderr and "--split validation" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "r").exists()
