"""Retention benchmark: pm_dvr's index-driven enforcement against a cron-style scan-sort-delete.

Two identical trees of 100,000 small clips (5 cameras x 20,000, one a minute, real layout) under
bench/out/ (gitignored). pm_dvr builds its index once (timed: ClipIndex.scan + Retention.load),
then each round the quota is exceeded by 1,000 clips and both sides delete exactly the 1,000
oldest: pm_dvr through `Retention.enforce()`, the anchor by os.walk + stat of every file + sort by
mtime + delete oldest until under quota, as cron cleaners do. Deleted files are re-created (and
re-added to the index, as the recorder would) between rounds; creation is not timed.

The first round after creating 200,000 files is slow for both sides alike (the file system is
still settling), so one warm-up round is run and printed but not counted.

Run from the repo root: .venv/bin/python bench/retention.py [--rounds N] [--warmup N]
"""

from __future__ import annotations

import argparse
from itertools import islice
import json
import os
from pathlib import Path
import shutil
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custom_components.pm_dvr.core.clips import ClipIndex, clip_from_path
from custom_components.pm_dvr.core.layout import clip_path, recordings_dir
from custom_components.pm_dvr.core.retention import (
    BYTES_PER_GB,
    Retention,
    RetentionConfig,
)

OUT = Path(__file__).resolve().parent / "out" / "retention"
CAMERAS = 5
CLIP_BYTES = 300
OVER = 1000


def clip_starts(n_clips: int) -> list[tuple[str, float]]:
    """(camera, start) of every clip, starting at local midnight 20 days ago."""
    lt = time.localtime(time.time() - 20 * 86400)
    base = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))
    per_camera = n_clips // CAMERAS
    return [(f"cam{c}", base + i * 60 + c * 7) for c in range(CAMERAS) for i in range(per_camera)]


def write(storage: Path, camera: str, start: float, payload: bytes) -> Path:
    path = clip_path(storage, camera, start)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, payload)
        os.utime(fd, (start + 60, start + 60))
    finally:
        os.close(fd)
    return path


def build_tree(storage: Path, clips: list[tuple[str, float]]) -> None:
    payload = b"\0" * CLIP_BYTES
    for day_dir in {clip_path(storage, cam, start).parent for cam, start in clips}:
        day_dir.mkdir(parents=True, exist_ok=True)
    for camera, start in clips:
        write(storage, camera, start, payload)


def scan_sort_delete(recordings: Path, quota: int) -> tuple[int, list[str]]:
    """The anchor: what a cron cleaner does every run, whatever there is to delete."""
    files: list[tuple[float, int, str]] = []
    total = 0
    for root, _dirs, names in os.walk(recordings):
        for name in names:
            if not name.endswith(".mp4"):
                continue
            path = os.path.join(root, name)
            st = os.stat(path)
            files.append((st.st_mtime, st.st_size, path))
            total += st.st_size
    files.sort()
    deleted: list[str] = []
    for _mtime, size, path in files:
        if total <= quota:
            break
        os.remove(path)
        total -= size
        deleted.append(path)
    return len(deleted), deleted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed first rounds")
    parser.add_argument("--clips", type=int, default=100_000)
    args = parser.parse_args()

    clips = clip_starts(args.clips)
    n_clips = len(clips)
    shutil.rmtree(OUT, ignore_errors=True)
    tree_a, tree_b = OUT / "a", OUT / "b"
    t = time.perf_counter()
    build_tree(tree_a, clips)
    build_tree(tree_b, clips)
    os.sync()  # neither side pays for the set-up's write-back
    print(f"created 2 x {n_clips} clips in {time.perf_counter() - t:.1f} s (not measured)")

    quota = (n_clips - OVER) * CLIP_BYTES
    config = RetentionConfig(max_storage_gb=quota / BYTES_PER_GB)
    scans, loads = [], []
    index = ClipIndex(recordings_dir(tree_a))
    retention = Retention(tree_a, index, config)
    for _ in range(3):
        t = time.perf_counter()
        assert index.scan() == n_clips
        t_scan = time.perf_counter()
        retention.load()
        scans.append(t_scan - t)
        loads.append(time.perf_counter() - t_scan)
    assert retention.usage().recordings_bytes == n_clips * CLIP_BYTES

    enforce_times: list[float] = []
    scan_times: list[float] = []
    payload = b"\0" * CLIP_BYTES
    for _ in range(args.warmup + args.rounds):
        expected = list(islice(index.oldest(), OVER))
        t = time.perf_counter()
        result = retention.enforce()
        enforce_times.append(time.perf_counter() - t)
        assert result.files_deleted == OVER, result
        assert result.bytes_freed == OVER * CLIP_BYTES, result
        assert not any(c.path.exists() for c in expected)
        assert next(index.oldest()).start > expected[-1].start
        assert retention.usage().recordings_bytes == quota

        t = time.perf_counter()
        count, deleted = scan_sort_delete(recordings_dir(tree_b), quota)
        scan_times.append(time.perf_counter() - t)
        assert count == OVER
        rel_a = sorted(str(c.path.relative_to(tree_a)) for c in expected)
        assert sorted(str(Path(p).relative_to(tree_b)) for p in deleted) == rel_a

        for clip in expected:  # the recorder brings the quota back to exactly +1,000 clips
            clip.path.parent.mkdir(parents=True, exist_ok=True)
            write(tree_a, clip.camera, clip.start, payload)
            added = clip_from_path(clip.camera, clip.path)
            assert added is not None
            index.add(added)
            write(tree_b, clip.camera, clip.start, payload)
        assert retention.usage().recordings_bytes == n_clips * CLIP_BYTES

    print(
        f"warm-up rounds, not counted: pm_dvr {enforce_times[: args.warmup]}, "
        f"anchor {scan_times[: args.warmup]}"
    )
    del enforce_times[: args.warmup], scan_times[: args.warmup]
    enforce_s = statistics.median(enforce_times)
    anchor_s = statistics.median(scan_times)
    index_build_s = statistics.median(s + lo for s, lo in zip(scans, loads, strict=True))
    speedup = anchor_s / enforce_s
    print()
    print(f"{'measure':<44}{'median':>10}  rounds")
    print(
        f"{'index build: ClipIndex.scan (s)':<44}{statistics.median(scans):>10.3f}  {scans!r:.60}"
    )
    print(f"{'index build: Retention.load (s)':<44}{statistics.median(loads):>10.3f}")
    print(f"{'index_build_s (scan + load)':<44}{index_build_s:>10.3f}")
    print(f"{'pm_dvr enforce, 1,000 oldest of 100k (s)':<44}{enforce_s:>10.4f}  ", end="")
    print(" ".join(f"{x:.4f}" for x in enforce_times))
    print(f"{'anchor walk+stat+sort+delete (s)':<44}{anchor_s:>10.4f}  ", end="")
    print(" ".join(f"{x:.4f}" for x in scan_times))
    print(f"{'speedup (anchor / pm_dvr)':<44}{speedup:>10.1f}x")
    shutil.rmtree(OUT, ignore_errors=True)
    print(
        "RESULT "
        + json.dumps(
            {
                "enforce_s": round(enforce_s, 5),
                "speedup_vs_scan": round(speedup, 1),
                "index_build_s": round(index_build_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
