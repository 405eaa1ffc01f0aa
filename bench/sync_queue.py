"""Benchmark helper: how long the uploader takes to find its next job with 100k jobs queued.

`queue_pick_ms()` builds a sync queue of `jobs` waiting jobs spread over `targets` targets (due
times spread over two hours, half of them already due), then times `picks` picks. A pick is what
a target's runner does when it looks for work: `take_due` (the earliest due job of that target)
and, to keep the queue the same for the next pick, `release`. It returns the median in
milliseconds; `queue_pick_stats()` gives the median, p99 and max, the anchor and the build time.

The anchor is what main did on every wake-up before the per-target heaps: scan every job, sort
the due ones and deep-copy them (`SyncQueue.due`, removed), timed `anchor_rounds` times.

Usable from another benchmark (bench/soak.py): `from sync_queue import queue_pick_ms` with
bench/ on sys.path, or `pick_ms(queue, target)` to time one pick on a live queue.
Run alone from the repo root: .venv/bin/python bench/sync_queue.py [--jobs 100000]
The last line printed is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
import random
import statistics
import sys
import time
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from custom_components.pm_dvr.core.sync import SyncQueue  # noqa: E402

NOW = 1_800_000_000.0


def build_items(jobs: int, targets: int, seed: int = 17) -> list[dict[str, Any]]:
    """Queue items as stored: recordings spread over the targets, due from -1 h to +1 h."""
    rng = random.Random(seed)
    return [
        {
            "id": f"{index:032x}",
            "kind": "recording",
            "path": f"recordings/cam{index % 16}/2026-01-01/{index:08d}.mp4",
            "target": f"target{index % targets}",
            "attempts": rng.randint(0, 5),
            "next_attempt": NOW + rng.uniform(-3600.0, 3600.0),
            "last_error": None,
            "added": NOW - 7200.0 + index * 0.01,
        }
        for index in range(jobs)
    ]


def pick_ms(queue: SyncQueue, target: str, now: float | None = None) -> float:
    """Milliseconds for one pick (take_due, then release so the queue stays the same)."""
    when = time.time() if now is None else now
    started = time.perf_counter()
    job = queue.take_due(target, when)
    elapsed = time.perf_counter() - started
    if job is not None:
        queue.release(job["id"])
    return elapsed * 1000.0


def anchor_due_ms(items: list[dict[str, Any]], now: float = NOW) -> float:
    """Milliseconds for main's old `due()`: scan all, sort the due jobs, deep-copy them."""
    started = time.perf_counter()
    ready = [job for job in items if job["next_attempt"] <= now]
    ready.sort(key=lambda job: (job["next_attempt"], job["added"]))
    [copy.deepcopy(job) for job in ready]
    return (time.perf_counter() - started) * 1000.0


def queue_pick_stats(
    jobs: int = 100_000, targets: int = 2, picks: int = 2000, anchor_rounds: int = 3
) -> dict[str, float]:
    """Pick times (ms) on a synthetic queue of `jobs` jobs; see the module docstring."""
    items = build_items(jobs, targets)
    started = time.perf_counter()
    queue = SyncQueue(items, clock=lambda: NOW)
    build_ms = (time.perf_counter() - started) * 1000.0
    times = sorted(pick_ms(queue, f"target{i % targets}", NOW) for i in range(picks))
    result = {
        "jobs": float(jobs),
        "targets": float(targets),
        "picks": float(picks),
        "pick_median_ms": statistics.median(times),
        "pick_p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
        "pick_max_ms": times[-1],
        "build_ms": build_ms,
    }
    if anchor_rounds:
        anchors = [anchor_due_ms(items) for _ in range(anchor_rounds)]
        result["anchor_due_median_ms"] = statistics.median(anchors)
    return result


def queue_pick_ms(jobs: int = 100_000, targets: int = 2, picks: int = 2000) -> float:
    """The median time (ms) of one pick on a queue of `jobs` jobs."""
    return queue_pick_stats(jobs, targets, picks, anchor_rounds=0)["pick_median_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--picks", type=int, default=2000)
    parser.add_argument("--anchor-rounds", type=int, default=3)
    args = parser.parse_args()
    result = queue_pick_stats(args.jobs, args.targets, args.picks, args.anchor_rounds)
    for key, value in result.items():
        print(f"{key:>22}: {value:.4f}")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
