"""Benchmark of the media browser's listings: each level against a plain directory walk.

Run from the repo root: .venv/bin/python bench/media.py [--clips 100000] [--events 2000]
Real (empty) clip files and event folders under bench/out/media (gitignored): a year of footage,
one camera. pm_dvr's side is the work media_source.py does per request (clip index + bisection,
event catalog); the anchor walks the folders on every request, as a media source without an index
would. Target: every level under 200 ms. Last line: RESULT {json}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
import shutil
import statistics
import sys
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.pm_dvr.core.clips import ClipIndex, clip_start_from_name  # noqa: E402
from custom_components.pm_dvr.core.layout import (  # noqa: E402
    EVENT_FILE,
    clip_path,
    events_dir,
    recordings_dir,
)
from custom_components.pm_dvr.core.media import (  # noqa: E402
    EventCatalog,
    day_buckets,
    day_range,
    hour_buckets,
    hour_range,
)

PAGE = 100  # media_source.PAGE_SIZE (not imported: that module needs Home Assistant)
CAMERA = "front-door"
TARGET_MS = 200.0


def build(storage: Path, clips: int, events: int, year_start: float) -> None:
    step = 365 * 86400 / clips
    made: set[Path] = set()
    for i in range(clips):
        start = year_start + i * step
        path = clip_path(storage, CAMERA, start)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(b"")
        os.utime(path, (start + step, start + step))
    root = events_dir(storage)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(events):
        start = year_start + i * 365 * 86400 / events
        event_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(start)) + f"-000_motion{i}"
        folder = root / event_id
        folder.mkdir()
        doc = {
            "id": event_id,
            "label": f"motion {i}",
            "trigger": "motion",
            "cameras": [CAMERA],
            "requested": {"start": None, "end": None},
            "clips": {CAMERA: [{"name": clip_path(storage, CAMERA, start).name}]},
            "state": "complete",
        }
        (folder / EVENT_FILE).write_text(json.dumps(doc))


def timed(fn: Any, repeat: int) -> float:
    """Median milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


# ----------------------------------------------------------------------- anchor: walk per request


def walk_clips(storage: Path) -> list[float]:
    starts = []
    for _dirpath, _dirs, files in os.walk(recordings_dir(storage) / CAMERA):
        for name in files:
            start = clip_start_from_name(name)
            if start is not None:
                starts.append(start)
    starts.sort()
    return starts


def anchor_days(storage: Path) -> list[tuple[str, int]]:
    days: dict[str, int] = {}
    for start in walk_clips(storage):
        key = time.strftime("%Y-%m-%d", time.localtime(start))
        days[key] = days.get(key, 0) + 1
    return sorted(days.items(), reverse=True)[:PAGE]


def anchor_hours(storage: Path, day: str) -> list[tuple[str, int]]:
    hours: dict[str, int] = {}
    for start in walk_clips(storage):
        local = time.localtime(start)
        if time.strftime("%Y-%m-%d", local) == day:
            hours[f"{local.tm_hour:02d}"] = hours.get(f"{local.tm_hour:02d}", 0) + 1
    return sorted(hours.items(), reverse=True)


def anchor_clips(storage: Path, day: str, hour: str) -> list[float]:
    return [
        s
        for s in walk_clips(storage)
        if time.strftime("%Y-%m-%d %H", time.localtime(s)) == f"{day} {hour}"
    ][:PAGE]


def anchor_events(storage: Path, page: int) -> list[dict[str, Any]]:
    docs = []
    for dirpath, _dirs, files in os.walk(events_dir(storage)):
        if EVENT_FILE in files:
            docs.append(json.loads(Path(dirpath, EVENT_FILE).read_bytes()))
    docs.sort(key=lambda d: d["id"], reverse=True)
    return docs[(page - 1) * PAGE : page * PAGE]


# ----------------------------------------------------------------------- pm_dvr: index + catalog


def pm_days(index: ClipIndex) -> list[Any]:
    return day_buckets(index.starts(CAMERA))[::-1][:PAGE]


def pm_hours(index: ClipIndex, day: str) -> list[Any]:
    starts = index.starts(CAMERA)
    lo, hi = day_range(starts, day)
    return hour_buckets(starts, lo, hi)[::-1]


def pm_clips(index: ClipIndex, day: str, hour: str) -> list[Any]:
    starts = index.starts(CAMERA)
    lo, hi = hour_range(starts, day, hour)
    if lo == hi:
        return []
    t1 = starts[hi] if hi < len(starts) else math.inf
    return index.starting(CAMERA, starts[lo], t1)[:PAGE]


def pm_events(catalog: EventCatalog, page: int) -> list[Any]:
    ids = catalog.ids()[(page - 1) * PAGE : page * PAGE]
    return [catalog.summary(event_id) for event_id in ids]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    storage = ROOT / "bench" / "out" / "media"
    shutil.rmtree(storage, ignore_errors=True)
    year_start = time.mktime((2025, 1, 1, 0, 0, 0, 0, 0, -1))
    t0 = time.perf_counter()
    build(storage, args.clips, args.events, year_start)
    build_s = time.perf_counter() - t0
    index = ClipIndex(recordings_dir(storage))
    t0 = time.perf_counter()
    count = index.scan()
    scan_s = time.perf_counter() - t0
    catalog = EventCatalog(storage)
    catalog.ids()
    day, hour = "2025-07-01", "12"
    levels = {
        "cameras": (lambda: os.listdir(recordings_dir(storage)), index.cameras),
        "days (page 1)": (lambda: anchor_days(storage), lambda: pm_days(index)),
        "hours of a day": (lambda: anchor_hours(storage, day), lambda: pm_hours(index, day)),
        "clips of an hour": (
            lambda: anchor_clips(storage, day, hour),
            lambda: pm_clips(index, day, hour),
        ),
        "events (page 1)": (lambda: anchor_events(storage, 1), lambda: pm_events(catalog, 1)),
        "events (page 10)": (lambda: anchor_events(storage, 10), lambda: pm_events(catalog, 10)),
        "events (cold)": (
            lambda: anchor_events(storage, 1),
            lambda: pm_events(EventCatalog(storage), 1),  # first browse: list + 100 parses
        ),
    }
    assert len(pm_days(index)) == len(anchor_days(storage))
    assert [h.count for h in pm_hours(index, day)] == [n for _, n in anchor_hours(storage, day)]
    assert len(pm_clips(index, day, hour)) == len(anchor_clips(storage, day, hour))
    assert len(pm_events(catalog, 10)) == len(anchor_events(storage, 10))
    rows = []
    result_levels: dict[str, dict[str, float]] = {}
    for name, (anchor, ours) in levels.items():
        anchor_ms = timed(anchor, args.repeat)
        ours_ms = timed(ours, args.repeat * 4)
        rows.append((name, anchor_ms, ours_ms))
        result_levels[name] = {"anchor_ms": round(anchor_ms, 3), "pm_dvr_ms": round(ours_ms, 3)}
    print(f"{count} clips indexed over a year ({build_s:.1f} s to create, scan {scan_s:.2f} s)")
    print(f"{args.events} events; page size {PAGE}; median of {args.repeat} (anchor) runs")
    print(f"{'level':<18} {'walk (anchor) ms':>17} {'pm_dvr ms':>10} {'ratio':>8}")
    for name, anchor_ms, ours_ms in rows:
        print(f"{name:<18} {anchor_ms:>17.2f} {ours_ms:>10.3f} {anchor_ms / ours_ms:>7.0f}x")
    worst = max(ours for _, _, ours in rows)
    result = {
        "clips_indexed": count,
        "events": args.events,
        "levels": result_levels,
        "max_pm_dvr_ms": round(worst, 3),
        "target_ms": TARGET_MS,
        "meets_target": worst < TARGET_MS,
        "index_scan_s": round(scan_s, 3),
    }
    shutil.rmtree(storage, ignore_errors=True)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
