"""Atomic writes: a reader (or the next run after a kill) sees the whole old file or directory, or the
whole new one, never half of either. No torch here: the runtime uses it too."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_file(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh temporary path beside `path`; on success it is renamed over `path`.

    `suffix` ends the temporary name, for writers that add an extension when it is missing
    (numpy's savez). The name is unique, so parallel workers writing the same file never collide.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | memoryview | str) -> None:
    """Write `data` (text is UTF-8) to `path` through `atomic_file`, synced before the rename."""
    if isinstance(data, str):
        data = data.encode()
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@contextmanager
def atomic_directory(final: Path, clean_stale: bool = True) -> Iterator[Path]:
    """Yield a temporary directory beside `final`; on success it replaces `final`.

    The old `final` is renamed aside, the new one renamed in, then the old one deleted, so at no
    moment is there no complete copy. A failed or killed writer leaves the previous `final` untouched
    and, at worst, a hidden `.<name>.tmp-*` directory that the next call removes (`clean_stale`;
    pass False where several processes may fill the same directory at once, e.g. a shared cache).
    """
    final = Path(final).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    # A kill between the two renames below leaves only the old copy: put it back before cleaning up.
    previous = sorted(final.parent.glob(f".{final.name}.tmp-old-*"))
    if previous and not final.exists():
        os.rename(previous[0], final)
    if clean_stale:
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    # Not mkdtemp: its mode 0700 would become the final directory's; mkdir honours the umask.
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.parent / f".{final.name}.tmp-old-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
