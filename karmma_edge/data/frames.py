"""JPEG frames from EPIC-100 folders or straight from the per-video tar files (no unpacking)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import cv2
import numpy as np


class MissingData(Exception):
    """A frame or sample the clip needs is absent or unreadable; the dataset adds the segment."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def frame_name(frame: int) -> str:
    return f"frame_{frame:010d}.jpg"


def decode_jpeg(data: bytes, where: str, gray: bool) -> np.ndarray:
    # libjpeg decodes a truncated file into a grey-filled image with only a warning, so check the
    # end-of-image marker ourselves: a cut-off JPEG must be an error, never a plausible picture.
    if len(data) < 4 or data[:2] != b"\xff\xd8" or data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise MissingData(where, "truncated or not a JPEG")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise MissingData(where, "OpenCV cannot decode it")
    return img


class _Tar:
    """One tar file indexed once; members are read by offset, so no member is ever extracted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.index = _fast_index(path)
        except ValueError:
            # Long names, pax headers, sparse files...: let tarfile parse it (slower, always right).
            self.index = {}
            with tarfile.open(path, "r:") as tf:   # plain tar only: compressed tars cannot be seeked
                for m in tf:
                    if m.isfile():
                        self.index[m.name[2:] if m.name.startswith("./") else m.name] = (m.offset_data, m.size)
        self._fh = None
        self._pid = -1

    def read(self, member: str) -> bytes:
        loc = self.index.get(member)
        if loc is None:
            raise MissingData(f"{self.path}:{member}", "member not in tar")
        if self._pid != os.getpid():            # a forked worker must not share the parent's handle
            self._fh, self._pid = open(self.path, "rb"), os.getpid()
        self._fh.seek(loc[0])
        return self._fh.read(loc[1])


def _fast_index(path: Path) -> dict[str, tuple[int, int]]:
    """member -> (data offset, size) from the 512-byte headers alone.

    tarfile builds a TarInfo per member (~70 us each; an EPIC video has tens of thousands of
    frames); reading name, size and type straight from each ustar/GNU header is ~20x faster.
    Raises ValueError on anything it does not handle, so the caller falls back to tarfile.
    """
    index: dict[str, tuple[int, int]] = {}
    with open(path, "rb") as fh:
        pos = 0
        while True:
            fh.seek(pos)
            hdr = fh.read(512)
            if len(hdr) < 512 or hdr == b"\0" * 512:
                return index
            kind = hdr[156:157]
            if kind not in (b"0", b"\0", b"5"):       # regular file or directory only
                raise ValueError(f"tar member type {kind!r}")
            if hdr[345:346] != b"\0" and hdr[257:262] == b"ustar":
                raise ValueError("ustar prefix field in use")
            name = hdr[:100].split(b"\0", 1)[0].decode("utf-8")
            size_field = hdr[124:136]
            if size_field[0] & 0x80:                   # base-256 size: only for >8 GiB members
                raise ValueError("base-256 size")
            size = int(size_field.split(b"\0", 1)[0].strip() or b"0", 8)
            if kind != b"5":
                index[name[2:] if name.startswith("./") else name] = (pos + 512, size)
            pos += 512 + (size + 511) // 512 * 512


class FrameStore:
    """Reads `<root>/<pid>/{rgb,flow}_frames/<vid>/...` from a folder, or from `<vid>.tar` beside it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tars: dict[Path, _Tar | None] = {}

    def _source(self, pid: str, vid: str, kind: str) -> tuple[Path, _Tar | None]:
        base = self.root / pid / f"{kind}_frames"
        folder = base / vid
        if folder.is_dir():
            return folder, None
        tar_path = base / f"{vid}.tar"
        if tar_path not in self._tars:
            self._tars[tar_path] = _Tar(tar_path) if tar_path.is_file() else None
        tar = self._tars[tar_path]
        if tar is None:
            raise MissingData(str(folder), f"neither the folder nor {tar_path.name} exists")
        return folder, tar

    def _read(self, pid: str, vid: str, kind: str, member: str, gray: bool) -> np.ndarray:
        folder, tar = self._source(pid, vid, kind)
        if tar is not None:
            return decode_jpeg(tar.read(member), f"{tar.path}:{member}", gray)
        path = folder / member
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MissingData(str(path), "file not found") from None
        except OSError as exc:
            raise MissingData(str(path), f"unreadable ({exc.strerror})") from None
        return decode_jpeg(data, str(path), gray)

    def problem(self, pid: str, vid: str, kind: str, member: str, decode: bool) -> tuple[str, str] | None:
        """(where, reason) if a frame file is missing or unreadable, else None (for `data check`)."""
        try:
            folder, tar = self._source(pid, vid, kind)
            if tar is not None:
                data = tar.read(member)
                where = f"{tar.path}:{member}"
            else:
                path = folder / member
                where = str(path)
                if not decode:
                    # Markers only: the first two and last bytes, without reading the whole file.
                    with open(path, "rb") as fh:
                        head = fh.read(2)
                        fh.seek(max(0, path.stat().st_size - 64))
                        tail = fh.read()
                    data = head + b"\x00" * 2 + tail
                else:
                    data = path.read_bytes()
            if decode:
                decode_jpeg(data, where, gray=kind == "flow")
            elif data[:2] != b"\xff\xd8" or data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
                raise MissingData(where, "truncated or not a JPEG")
        except MissingData as exc:
            return exc.path, exc.reason
        except FileNotFoundError:
            return str(folder / member), "file not found"
        except OSError as exc:
            return str(folder / member), f"unreadable ({exc.strerror})"
        return None

    def rgb(self, pid: str, vid: str, frame: int) -> np.ndarray:
        """uint8 [H,W,3] in RGB order."""
        return cv2.cvtColor(self._read(pid, vid, "rgb", frame_name(frame), gray=False), cv2.COLOR_BGR2RGB)

    def flow(self, pid: str, vid: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) uint8 [H,W] each."""
        name = frame_name(frame)
        return (self._read(pid, vid, "flow", f"u/{name}", gray=True),
                self._read(pid, vid, "flow", f"v/{name}", gray=True))

    def has(self, pid: str, vid: str, kind: str) -> bool:
        base = self.root / pid / f"{kind}_frames"
        return (base / vid).is_dir() or (base / f"{vid}.tar").is_file()


def resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize the whole frame (never crop: evaluation must see all of it); area filter when shrinking."""
    if img.shape[0] == height and img.shape[1] == width:
        return img
    shrink = img.shape[0] > height or img.shape[1] > width
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
