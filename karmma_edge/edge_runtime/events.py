"""Where predictions go: a broadcast hub for Server-Sent Events clients and a JSON Lines file."""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

CLOSED = None   # the message that tells a subscriber the hub is shutting down


class EventHub:
    """Fan-out of messages ((event id, JSON text) pairs) to any number of subscribers, each with its own bounded queue so a
    slow client misses events (counted) instead of holding up the runtime."""

    def __init__(self, per_client: int = 64, on_drop=lambda: None):
        self.per_client = per_client
        self.on_drop = on_drop
        self._subs: set[queue.Queue] = set()
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=self.per_client)
        with self._lock:
            if self._closed:
                q.put_nowait(CLOSED)
            else:
                self._subs.add(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            self._subs.discard(q)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, message: object) -> None:
        with self._lock:
            subs = list(self._subs)
        for q in subs:
            self._offer(q, message)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            subs, self._subs = list(self._subs), set()
        for q in subs:
            self._offer(q, CLOSED)

    def _offer(self, q: queue.Queue, message: object) -> None:
        while True:
            try:
                q.put_nowait(message)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.on_drop()
                except queue.Empty:
                    pass


class JsonLinesSink:
    """One JSON object per line, flushed per line, so the file is complete up to the last event even
    if the process is killed."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if not self._f.closed:
                self._f.write(line)
                self._f.flush()

    def close(self) -> None:
        with self._lock:
            self._f.close()
