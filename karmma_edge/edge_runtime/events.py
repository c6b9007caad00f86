"""Where predictions go: a broadcast hub for Server-Sent Events clients and a JSON Lines file."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
import time
from pathlib import Path

from karmma_edge.errors import ConfigError

log = logging.getLogger(__name__)

CLOSED = None   # the message that tells a subscriber the hub is shutting down
TAIL_BYTES = 1 << 16   # far longer than one prediction record
LOG_EVERY_S = 60.0     # a failing JSONL file is logged at most this often


class EventHub:
    """Fan-out of messages ((event id, JSON text) pairs) to any number of subscribers, each with its
    own bounded queue so a slow client misses events (counted) instead of holding up the runtime.

    A subscriber is a thread's `queue.Queue` (`subscribe`) or an event loop's `asyncio.Queue`
    (`subscribe_async`: the HTTP server's streams), filled from the publishing thread through its loop.
    """

    def __init__(self, per_client: int = 64, on_drop=lambda: None):
        self.per_client = per_client
        self.on_drop = on_drop
        self._subs: dict[object, asyncio.AbstractEventLoop | None] = {}
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self) -> queue.Queue:
        return self._add(queue.Queue(maxsize=self.per_client), None)

    def subscribe_async(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
        return self._add(asyncio.Queue(maxsize=self.per_client), loop)

    def _add(self, q, loop):
        with self._lock:
            if self._closed:
                q.put_nowait(CLOSED)
            else:
                self._subs[q] = loop
        return q

    def unsubscribe(self, q) -> None:
        with self._lock:
            self._subs.pop(q, None)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, message: object) -> None:
        with self._lock:
            subs = list(self._subs.items())
        for q, loop in subs:
            self._deliver(q, loop, message)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            subs, self._subs = list(self._subs.items()), {}
        for q, loop in subs:
            self._deliver(q, loop, CLOSED)

    def _deliver(self, q, loop, message: object) -> None:
        if loop is None:
            self._offer(q, message)
            return
        try:
            loop.call_soon_threadsafe(self._offer, q, message)
        except RuntimeError:   # the loop has closed: nobody reads this queue any more
            self.unsubscribe(q)

    def _offer(self, q, message: object) -> None:
        while True:
            try:
                q.put_nowait(message)
                return
            except (queue.Full, asyncio.QueueFull):
                try:
                    q.get_nowait()
                    self.on_drop()
                except (queue.Empty, asyncio.QueueEmpty):
                    pass


class JsonLinesSink:
    """One JSON object per line, written with one `write` call per line, so the file is complete up
    to the last event even if the process is killed.

    Writing never raises: a full disk, a read-only remount or a vanished directory costs the lines
    written meanwhile (counted in `lost`, reported through `on_lost`), not the daemon. After a failure
    the file is reopened and its torn last line cut off before the next line goes in, so every line
    of the file stays valid JSON; the same repair runs when the file is opened at start.
    """

    def __init__(self, path: Path, on_lost=lambda: None):
        self.path = Path(path)
        self.on_lost = on_lost
        self.lost = 0
        self.error: str | None = None           # the newest failure, until a line is written again
        self.last_seq: int | None = None         # of the file's last record when it was opened
        self._lock = threading.Lock()
        self._closed = False
        self._last_logged = -float("inf")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = self._open()
        except OSError as e:
            raise ConfigError(f"--jsonl {self.path}: cannot write there ({e.strerror or e}); choose a writable "
                              "path") from None
        self.last_seq = _last_seq(self.path)

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)   # read: the tail check
        try:
            dropped = _cut_torn_tail(fd)
        except OSError:
            os.close(fd)
            raise
        if dropped and self.error is None:   # while failing, every retry may cut its own torn line
            log.warning("%s ended in a partial line (%d bytes, from a crash or a full disk): removed it",
                        self.path, dropped)
        return fd

    def write(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._closed:
                return
            try:
                if self._fd is None:
                    self._fd = self._open()
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError as e:
                self._failed(e)
                return
            if self.error is not None:
                log.warning("%s: writing again after %d lost lines", self.path, self.lost)
                self.error = None

    def _failed(self, e: OSError) -> None:
        self.lost += 1
        self.on_lost()
        self.error = f"{e.strerror or e}"
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None   # reopened (and its torn line cut) by the next write
        now = time.monotonic()
        if now - self._last_logged >= LOG_EVERY_S:
            self._last_logged = now
            log.error("%s: cannot write (%s); %d lines lost so far, still serving", self.path, self.error, self.lost)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _cut_torn_tail(fd: int) -> int:
    """Truncate an append-mode file after its last newline; the number of bytes removed."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    chunk = min(size, TAIL_BYTES)
    tail = os.pread(fd, chunk, size - chunk)
    if tail.endswith(b"\n"):
        return 0
    cut = tail.rfind(b"\n")
    keep = size - chunk + cut + 1 if cut >= 0 else (0 if chunk == size else size)
    if keep == size:        # a line longer than TAIL_BYTES: not a file this daemon wrote; leave it
        return 0
    os.ftruncate(fd, keep)
    return size - keep


def _last_seq(path: Path) -> int | None:
    """`seq` of the file's last record, so a restarted daemon continues the numbering."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - TAIL_BYTES))
            lines = f.read().splitlines()
        seq = json.loads(lines[-1]).get("seq") if lines else None
    except (OSError, ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None
