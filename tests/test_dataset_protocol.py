"""Both readers satisfy the `Dataset` protocol and look segments up through its public `find`."""

from __future__ import annotations

from pathlib import Path

import pytest

from karmma_edge.data import Dataset, open_dataset, synthesize
from karmma_edge.errors import DataError
from karmma_edge.inputs import InputSpec


@pytest.mark.parametrize("fmt", ["epic100", "ssv2"])
def test_readers_satisfy_the_protocol(fmt: str, tiny_dataset: Path, tmp_path: Path) -> None:
    root = tiny_dataset if fmt == "epic100" else synthesize(tmp_path / "ssv2", preset="tiny", progress=False, fmt="ssv2")
    ds = open_dataset(root, "train", InputSpec(), fmt)
    assert isinstance(ds, Dataset)
    last = ds.segments[-1].id
    assert ds.find(last) == ds.index_of(last) == len(ds) - 1
    assert ds.find("no-such-id") is None
    with pytest.raises(DataError, match="no-such-id"):
        ds.index_of("no-such-id")
    assert set(ds.load(0).inputs) == set(ds.wanted())
