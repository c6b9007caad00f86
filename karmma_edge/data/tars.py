"""EPIC's per-video tar distribution: write tars byte-identically, and pack a folder tree into tars."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path


def write_tar(path: Path, members: dict[str, bytes]) -> None:
    """An uncompressed tar (readable by offset) with fixed headers: no times, owners or modes vary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for name in sorted(members):
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(members[name]))


def pack_tree(src: Path, dst: Path) -> Path:
    """Copy an EPIC-100 folder tree to `dst`, each `<kind>_frames/<vid>/` folder becoming `<vid>.tar`."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=False)
    for item in src.iterdir():
        if item.is_file():
            shutil.copy2(item, dst / item.name)
    for kind_dir in sorted(src.glob("*/*_frames")):
        for vid_dir in sorted(p for p in kind_dir.iterdir() if p.is_dir()):
            members = {str(f.relative_to(vid_dir)): f.read_bytes() for f in vid_dir.rglob("*.jpg")}
            write_tar(dst / kind_dir.relative_to(src) / f"{vid_dir.name}.tar", members)
    return dst
