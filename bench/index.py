"""Clip index benchmark: memory per clip, add/remove/totals and the hub status at 2M clips,
main's index (a list of `Clip` objects per camera, sums on every read) against this one.

The index is built in memory as a scan of 8 cameras x 30 days of 10-s clips would build it
(2,073,600 clips, plain names in day folders): main's as `Clip` objects with a `Path` each,
this one through the same per-clip step as its scan (`_Camera.append` of a tagged name).
Memory is what tracemalloc sees allocated by the build. Creating 2M files to scan is not
practical, so the real scan is timed on `--scan-clips` files under bench/out/index/ (gitignored)
with a warm page cache, and extrapolated linearly to 2M (said so in the output).

The hub status is `HubCoordinator._status` itself (count, bytes, oldest clip of the index),
called as the event loop calls it on every clip close and every minute.

Old is `git show <--old-ref>:custom_components/pm_dvr/core/clips.py` (default main), imported
as a module beside this one; nothing in the work tree changes.

Start-up round (`--round startup`): the 2M files themselves under bench/out/index/2073600/
(made once, about 2 minutes, kept), every day folder last written at the end of its day except
each camera's newest, written just now (today's). Timed as the integration starts: crash
recovery, the scan and retention's accounting built from the index, with the page cache dropped (cold, as after a reboot) and warm; first
without saved blocks (the scan alone, as before blocks, and the first start after an upgrade,
which saves them), then with the blocks that start saved.

Run from the repo root: .venv/bin/python bench/index.py [--round memory|startup|all]
[--clips 2073600] [--scan-clips 50000]. The last line printed is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
import gc
import json
import os
from pathlib import Path
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from types import ModuleType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from custom_components.pm_dvr.coordinator import HubCoordinator  # noqa: E402
from custom_components.pm_dvr.core import clips as new_clips  # noqa: E402
from custom_components.pm_dvr.core.layout import (  # noqa: E402
    clip_path,
    index_dir,
    recordings_dir,
)
from custom_components.pm_dvr.core.recorder import recover_partials  # noqa: E402

OUT = ROOT / "bench" / "out" / "index"
CAMERAS = 8
STEP = 10.0
SIZE = 5_000_000  # 4 Mbit/s x 10 s
ROUNDS = 10_000


def old_module(ref: str) -> ModuleType:
    """main's clips.py as `custom_components.pm_dvr.core.clips_old` (its relative imports work)."""
    source = subprocess.run(
        ["git", "show", f"{ref}:custom_components/pm_dvr/core/clips.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = "custom_components.pm_dvr.core.clips_old"
    module = ModuleType(name)
    module.__package__ = "custom_components.pm_dvr.core"
    module.__file__ = f"<{ref}:clips.py>"
    sys.modules[name] = module  # dataclasses look the module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def base_time(days: int) -> float:
    """Local midnight `days` days ago."""
    lt = time.localtime(time.time() - days * 86400)
    return time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))


def synthetic(n: int, base: float) -> Iterator[tuple[str, str, int, str, float]]:
    """(camera, day folder, day's wall midnight, name, start) of n clips over CAMERAS cameras."""
    per_camera = n // CAMERAS
    days: dict[int, tuple[str, int, str]] = {}
    for c in range(CAMERAS):
        camera = f"cam{c}"
        for i in range(per_camera):
            start = base + i * STEP
            local = time.localtime(start) if i % 360 == 0 else None  # an hour's clips share a day
            if local is not None:
                key = local.tm_yday + local.tm_year * 1000
                if key not in days:
                    folder = time.strftime("%Y-%m-%d", local)
                    midnight = new_clips._folder_wall(folder)
                    assert midnight is not None
                    days[key] = (folder, midnight, folder.replace("-", ""))
                folder, midnight, ymd = days[key]
                offset = local.tm_gmtoff
            wall = int(start) + offset
            second = wall - midnight
            if not 0 <= second < 86400:  # crossed midnight inside the hour: look again
                local = time.localtime(start)
                folder = time.strftime("%Y-%m-%d", local)
                midnight = new_clips._folder_wall(folder)
                assert midnight is not None
                ymd = folder.replace("-", "")
                second = wall - midnight
            h, rest = divmod(second, 3600)
            m, s = divmod(rest, 60)
            yield camera, folder, midnight, f"{ymd}-{h:02d}{m:02d}{s:02d}.mp4", start


def build_old(old: ModuleType, root: Path, rows: Iterable[tuple[str, str, int, str, float]]) -> Any:
    """main's index as its scan leaves it: a sorted list of Clip objects per camera."""
    index = old.ClipIndex(root)
    lists: dict[str, list[Any]] = {}
    for n, (camera, folder, _midnight, name, start) in enumerate(rows):
        path = Path(f"{root}{os.sep}{camera}{os.sep}{folder}{os.sep}{name}")
        clip = old.Clip(start, start + STEP, camera, path, SIZE + n % 1000, n + 1)
        lists.setdefault(camera, []).append(clip)
    index._clips = lists
    return index


def build_new(root: Path, rows: Iterable[tuple[str, str, int, str, float]]) -> Any:
    """This index as its scan builds it: per name, a tag and one append to the arrays."""
    index = new_clips.ClipIndex(root)
    for n, (camera, _folder, midnight, name, start) in enumerate(rows):
        cam = index._camera(camera)
        tag = cam.plain_tag(midnight, name, start)
        assert tag is not None
        cam.append(start, start + STEP, SIZE + n % 1000, n + 1, tag)
    index._count = sum(len(cam) for cam in index._cameras.values())
    index._bytes = sum(cam.bytes for cam in index._cameras.values())
    return index


def traced(build: Callable[[], Any]) -> tuple[Any, int]:
    """What `build` returns and the bytes still allocated after it (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = build()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return result, held


def per_call_us(func: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median and max of `rounds` calls, in microseconds."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        func()
        times.append((time.perf_counter_ns() - t0) / 1000)
    return statistics.median(times), max(times)


def status_of(index: Any) -> Callable[[], object]:
    """The hub coordinator's status read, on a stand-in entry holding `index`."""
    fake = SimpleNamespace(
        config_entry=SimpleNamespace(runtime_data=SimpleNamespace(index=index, retention=None))
    )
    return lambda: HubCoordinator._status(fake)  # type: ignore[arg-type]


def timed_us(clips: list[Any], step: Callable[[Any], object]) -> float:
    """Mean microseconds of `step` over clips."""
    t0 = time.perf_counter_ns()
    for clip in clips:
        step(clip)
    return (time.perf_counter_ns() - t0) / 1000 / len(clips)


def operations(
    module: ModuleType, index: Any, root: Path, status_rounds: int, newest: float
) -> dict[str, Any]:
    """add/remove/totals/status timings on a built index (it is left as it was)."""

    def clip(start: float, n: int) -> Any:
        path = clip_path(root.parent, "cam0", start)
        return module.Clip(start, start + STEP, "cam0", path, SIZE, 10**9 + n)

    def remove(clip: Any) -> None:
        assert index.remove(clip)

    # A clip closing: after the newest (appended); then the same removed, newest first.
    fresh = [clip(newest + STEP * (i + 1), i) for i in range(ROUNDS)]
    add_us = timed_us(fresh, index.add)
    remove_us = timed_us(fresh[::-1], remove)
    # A late clip (the clock stepped back): inserted in the middle of a camera's clips.
    middle = (index.oldest_start() + newest) / 2 + 0.5
    late = [clip(middle + i * 0.001, ROUNDS + i) for i in range(ROUNDS // 50)]
    insert_us = timed_us(late, index.add)
    for gone in late:
        remove(gone)

    def totals() -> tuple[int, int, float | None]:
        return index.count(), index.total_size(), index.oldest_start()

    totals_us = per_call_us(totals, status_rounds)
    status_us = per_call_us(status_of(index), status_rounds)
    # Retention's batch: the 256 oldest clips of a camera, then put back (adds not timed).
    batch = (
        index.clips("cam1")[:256]
        if module is not new_clips
        else index.starting("cam1", float("-inf"), index.starts("cam1")[256])
    )
    t0 = time.perf_counter_ns()
    assert index.remove_many(batch) == len(batch)
    batch_ms = (time.perf_counter_ns() - t0) / 1e6
    for clip in batch:
        index.add(clip)
    return {
        "add_us": add_us,
        "remove_us": remove_us,
        "insert_middle_us": insert_us,
        "totals_us_median": totals_us[0],
        "totals_us_max": totals_us[1],
        "status_ms_median": status_us[0] / 1000,
        "status_ms_max": status_us[1] / 1000,
        "remove_oldest_256_ms": batch_ms,
    }


def scan_tree(n: int, base: float) -> Path:
    """n empty clip files in the recordings layout (kept between runs when already there)."""
    storage = OUT / f"{n}"
    root = recordings_dir(storage)
    marker = storage / "complete"
    if marker.exists():
        return root
    shutil.rmtree(storage, ignore_errors=True)
    for camera, folder, _midnight, name, start in synthetic(n, base):
        day = root / camera / folder
        if not day.is_dir():
            day.mkdir(parents=True)
        fd = os.open(day / name, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.utime(fd, (start + STEP, start + STEP))
        finally:
            os.close(fd)
    marker.write_text("ok")
    return root


def settle_days(root: Path) -> None:
    """Each day folder last written at the end of its day, each camera's newest just now."""
    for camera in sorted(root.iterdir()):
        days = sorted(camera.iterdir())
        for day in days[:-1]:
            lt = time.strptime(day.name, "%Y-%m-%d")
            end = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday + 1, 0, 0, 0, 0, 0, -1))
            os.utime(day, (end, end))
        os.utime(days[-1])


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def start_up(root: Path, blocks: Path | None, cold: bool) -> tuple[float, int]:
    """Seconds from nothing to a usable index, as `_recover_and_scan` in __init__.py runs."""
    if cold:
        drop_caches()
    started = time.perf_counter()
    index = new_clips.ClipIndex(root, blocks_dir=blocks)
    storage = root.parent
    recover_partials(storage, None if blocks is None else index.folders_to_scan())
    count = index.scan()
    index.keyed_sizes()  # retention's accounting, built next at start-up from the index
    return time.perf_counter() - started, count


def startup_round(n: int, base: float) -> dict[str, float]:
    """Start-up with n clip files on disk, without and with saved blocks, cold and warm."""
    t0 = time.perf_counter()
    root = scan_tree(n, base)
    print(f"{n:,} clip files ready in {time.perf_counter() - t0:.0f} s", flush=True)
    settle_days(root)
    blocks = index_dir(root.parent)
    shutil.rmtree(blocks, ignore_errors=True)
    figures: dict[str, float] = {}
    for key, title, use_blocks, cold in (
        ("plain_cold_s", "no blocks (the scan alone), cold", False, True),
        ("plain_warm_s", "no blocks (the scan alone), warm", False, False),
        ("first_cold_s", "first start: no blocks yet, saves them, cold", True, True),
        ("blocks_cold_s", "with saved blocks, cold", True, True),
        ("blocks_warm_s", "with saved blocks, warm", True, False),
    ):
        seconds, count = start_up(root, blocks if use_blocks else None, cold)
        assert count == n // CAMERAS * CAMERAS, count
        figures[key] = seconds
        print(f"  start-up {title:47} {seconds:6.2f} s  ({count:,} clips)", flush=True)
    saved = sum(p.stat().st_size for p in blocks.rglob("*.idx"))
    figures["blocks_mb"] = saved / 1e6
    print(f"  saved blocks: {saved / 1e6:.0f} MB in {len(list(blocks.rglob('*.idx')))} files")
    return figures


def scan_s(module: ModuleType, root: Path) -> tuple[float, int]:
    """Best of three scans (warm page cache), seconds, and the count."""
    best, count = float("inf"), 0
    for _ in range(3):
        index = module.ClipIndex(root)
        t0 = time.perf_counter()
        count = index.scan()
        best = min(best, time.perf_counter() - t0)
    return best, count


def main() -> None:
    """Print the figures side by side, then RESULT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=8 * 30 * 8640)
    parser.add_argument("--scan-clips", type=int, default=50_000)
    parser.add_argument("--old-ref", default="main")
    parser.add_argument("--status-rounds", type=int, default=20)
    parser.add_argument("--round", choices=("memory", "startup", "all"), default="all")
    args = parser.parse_args()
    if args.round == "startup":
        n = args.clips // CAMERAS * CAMERAS
        startup = startup_round(n, base_time(31))
        print("RESULT " + json.dumps({"clips": n, **{k: round(v, 2) for k, v in startup.items()}}))
        return
    old = old_module(args.old_ref)
    root = Path("/srv/dvr/recordings")
    base = base_time(31)
    n = args.clips // CAMERAS * CAMERAS

    figures: dict[str, dict[str, Any]] = {}
    for label, module, build in (
        ("old", old, lambda: build_old(old, root, synthetic(n, base))),
        ("new", new_clips, lambda: build_new(root, synthetic(n, base))),
    ):
        index, held = traced(build)
        assert index.count() == n
        # A full collection (HA's loop thread runs them) walks every tracked object.
        t0 = time.perf_counter()
        gc.collect()
        gc_ms = (time.perf_counter() - t0) * 1000
        gc.disable()  # the operations alone, not collections they happen to trigger
        rounds = args.status_rounds if label == "old" else ROUNDS
        figures[label] = {
            "bytes_per_clip": held / n,
            "gc_full_ms": gc_ms,
            "index_mb": held / 1e6,
            **operations(module, index, root, rounds, base + (n // CAMERAS - 1) * STEP),
        }
        sample = index.heads()[0]
        figures[label]["first_path"] = str(sample.path)
        gc.enable()
        if label == "new":  # outside the index, the same dict on main (built from Clips there)
            t0 = time.perf_counter()
            keyed, held = traced(index.keyed_sizes)
            figures[label]["retention_s"] = time.perf_counter() - t0
            figures[label]["retention_bytes_per_clip"] = held / len(keyed)
            del keyed
        del index
        gc.collect()
    assert figures["old"]["first_path"] == figures["new"]["first_path"]

    tree = scan_tree(args.scan_clips, base)
    for label, module in (("old", old), ("new", new_clips)):
        seconds, count = scan_s(module, tree)
        assert count == args.scan_clips // CAMERAS * CAMERAS
        figures[label]["scan_s"] = seconds
        figures[label]["scan_2m_s_extrapolated"] = seconds * n / count

    rows_out = [
        ("index memory, bytes/clip", "bytes_per_clip", "{:.1f}"),
        ("index memory, MB", "index_mb", "{:.0f}"),
        ("add (a clip closing: append), µs", "add_us", "{:.2f}"),
        ("remove (one, the newest), µs", "remove_us", "{:.2f}"),
        ("add a late clip (middle insert), µs", "insert_middle_us", "{:.1f}"),
        ("remove 256 oldest, ms", "remove_oldest_256_ms", "{:.2f}"),
        ("totals (count+bytes+oldest), µs median", "totals_us_median", "{:.2f}"),
        ("hub status update, ms median", "status_ms_median", "{:.4f}"),
        ("hub status update, ms max", "status_ms_max", "{:.4f}"),
        ("full gc.collect() with the index alive, ms", "gc_full_ms", "{:.1f}"),
        (f"scan of {args.scan_clips:,} files, s", "scan_s", "{:.2f}"),
        (f"scan of {n:,}, s (extrapolated)", "scan_2m_s_extrapolated", "{:.1f}"),
    ]
    print(f"\nAt {n:,} clips (status and totals on the index as built):")
    print(f"{'':44} {'old (main)':>14} {'new':>14}")
    for title, key, fmt in rows_out:
        old_text = fmt.format(figures["old"][key])
        new_text = fmt.format(figures["new"][key])
        print(f"{title:44} {old_text:>14} {new_text:>14}")
    print(
        "Outside the index: retention's accounting ({inode: size}, built at start-up) holds "
        f"{figures['new']['retention_bytes_per_clip']:.0f} bytes a clip "
        f"({figures['new']['retention_s']:.1f} s to build under tracemalloc)."
    )
    result = {
        "index_bytes_per_clip": round(figures["new"]["bytes_per_clip"], 1),
        "status_update_ms": round(figures["new"]["status_ms_median"], 4),
        "retention_accounting_bytes_per_clip": round(figures["new"]["retention_bytes_per_clip"], 1),
        "status_update_ms_max": round(figures["new"]["status_ms_max"], 4),
        "clips": n,
        "add_us": round(figures["new"]["add_us"], 2),
        "remove_us": round(figures["new"]["remove_us"], 2),
        "insert_middle_us": round(figures["new"]["insert_middle_us"], 1),
        "totals_us": round(figures["new"]["totals_us_median"], 2),
        "gc_full_ms": round(figures["new"]["gc_full_ms"], 1),
        "scan_2m_s_extrapolated": round(figures["new"]["scan_2m_s_extrapolated"], 1),
        "old": {
            "index_bytes_per_clip": round(figures["old"]["bytes_per_clip"], 1),
            "status_update_ms": round(figures["old"]["status_ms_median"], 2),
            "add_us": round(figures["old"]["add_us"], 2),
            "remove_us": round(figures["old"]["remove_us"], 2),
            "insert_middle_us": round(figures["old"]["insert_middle_us"], 1),
            "totals_us": round(figures["old"]["totals_us_median"], 1),
            "gc_full_ms": round(figures["old"]["gc_full_ms"], 1),
            "scan_2m_s_extrapolated": round(figures["old"]["scan_2m_s_extrapolated"], 1),
        },
    }
    if args.round == "all":
        startup = startup_round(n, base)
        result["startup_2m_s"] = round(startup["blocks_cold_s"], 2)
        result["startup"] = {k: round(v, 2) for k, v in startup.items()}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
