"""Run a command and report the peak memory of its whole process tree (it and every descendant,
e.g. DataLoader workers), sampled every 0.2 s: the sum of RSS, and the sum of USS (memory unique to
each process, so pages shared after fork are not counted twice).

    .venv/bin/python scripts/peak_memory.py -- karmma-edge train student --config student-scale ...
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def main() -> None:
    cmd = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    start = time.perf_counter()
    child = subprocess.Popen(cmd)
    root = psutil.Process(child.pid)
    peak_rss = peak_uss = peak_procs = 0
    while child.poll() is None:
        rss = uss = 0
        procs = tree(root)
        for p in procs:
            try:
                info = p.memory_full_info()
                rss, uss = rss + info.rss, uss + info.uss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        peak_rss, peak_uss, peak_procs = max(peak_rss, rss), max(peak_uss, uss), max(peak_procs, len(procs))
        time.sleep(0.2)
    print(json.dumps({"returncode": child.returncode, "seconds": round(time.perf_counter() - start, 1),
                      "peak_tree_rss_gb": round(peak_rss / 2 ** 30, 3), "peak_tree_uss_gb": round(peak_uss / 2 ** 30, 3),
                      "max_processes": peak_procs}), file=sys.stderr)
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
