"""Soak benchmark (issue #17): a month of footage, a long upload backlog with a hung target, and
live cameras, all at once in one process and one event loop, as the integration runs them.

What runs, for `--minutes` (10 by default):
- the clip index holding 8 cameras x 30 days of 10-s clips (2,073,600 entries, built as its scan
  builds them, bench/index.py) plus what the live cameras record;
- `--cameras` real RTSP cameras (the GStreamer rig, 1080p25 ~4 Mbit/s, bench/recording.py's
  media), each a StreamSession with the motion worker on (MotionSink before the Recorder, as
  coordinator.py adds them) and the recorder;
- the hub status (`HubCoordinator._status`, the coordinator's own code) read on the event loop
  after every clip close, as the coordinator does;
- the sync engine with its SQLite queue opened from disk holding `--jobs` jobs (100,000) for an
  Azure target whose endpoint accepts connections and never answers (tests/rig/sockets), with
  the product's default timeouts, beside a folder target; both take every recording ("all
  recordings" mode, which wakes the uploader at every clip), and the live clips are queued as
  they close;
- a loop probe: a task that sleeps 50 ms and notes how late it wakes, as HA's debugger
  (asyncio debug's slow-callback report) would see a blocked loop;
- a log handler on `custom_components.pm_dvr` that counts messages repeated within a minute.

The anchors, measured in the same run where the old code can run beside: the old queue's pick
(scan every job, sort and deep-copy the due ones, bench/sync_queue.py) on the same 100k jobs,
and the old index's hub status (a `Clip` object per clip, summed on every read, main before the
compact index) on 400,000 clips, the size the issue measured (2M of them would take 1 GB).

Run from the repo root: .venv/bin/python bench/soak.py [--minutes 10] [--cameras 4]
The last line printed is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import array
import asyncio
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
import gc
import json
import logging
from pathlib import Path
import shutil
import statistics
import sys
import threading
import time
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from index import (  # noqa: E402
    base_time,
    build_new,
    build_old,
    old_module,
    status_of,
    synthetic,
    traced,
)
from recording import make_media, pct  # noqa: E402
from sync_queue import NOW, anchor_due_ms, build_items, pick_ms  # noqa: E402

from custom_components.pm_dvr.core.clips import Clip  # noqa: E402
from custom_components.pm_dvr.core.layout import recordings_dir  # noqa: E402
from custom_components.pm_dvr.core.motion import MotionConfig, MotionWorker  # noqa: E402
from custom_components.pm_dvr.core.motion_sink import MotionSink  # noqa: E402
from custom_components.pm_dvr.core.recorder import Recorder  # noqa: E402
from custom_components.pm_dvr.core.stream import StreamSession  # noqa: E402
from custom_components.pm_dvr.core.sync import (  # noqa: E402
    AzureBlobConfig,
    FolderConfig,
    FolderTarget,
    JobResult,
    SqliteQueueStore,
    SyncEngine,
    SyncQueue,
    TargetSpec,
    TargetStatus,
    create_azure_target,
)
from tests.rig.azurite import ACCOUNT_KEY, ACCOUNT_NAME  # noqa: E402
from tests.rig.rtsp import RtspServer  # noqa: E402
from tests.rig.sockets import SilentServer  # noqa: E402

OUT = ROOT / "bench" / "out" / "soak"
HUNG, HEALTHY = "hung_azure", "folder"
PROBE_PERIOD = 0.05
# The index anchor's size: the measurement (400k clips, 182 MB); old main below.
OLD_CLIPS = 400_000
OLD_REF = "ed0a6c0"  # the last commit before the per-camera arrays


class RepeatCounter(logging.Handler):
    """Counts messages (logger and text) that came again within 60 s of their previous line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last: dict[tuple[str, str], float] = {}
        self.repeated: dict[tuple[str, str], int] = defaultdict(int)
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1
        key = (record.name, record.getMessage())
        previous = self.last.get(key)
        if previous is not None and record.created - previous < 60.0:
            self.repeated[key] += 1
        self.last[key] = record.created


class GcPauses:
    """How long each cycle collection held the GIL (the loop waits for it like for any work)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, str]] = []  # generation, ms, the thread it ran in
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            held = (time.perf_counter() - self._began) * 1000
            self.pauses.append((info["generation"], held, threading.current_thread().name))


class LoopProbe:
    """How late a 50-ms sleep wakes, all run long."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.spikes: list[tuple[float, float]] = []  # (wall time, lag) past 20 ms, to match logs

    async def run(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            asked = loop.time()
            await asyncio.sleep(PROBE_PERIOD)
            lag = max(0.0, loop.time() - asked - PROBE_PERIOD)
            self.lags.append(lag)
            if lag > 0.02:
                self.spikes.append((time.time(), lag))


class CpuTimes:
    """The machine's CPU time by kind (/proc/stat), sampled every 100 ms, to tell a loop held by
    this process from one whose virtual CPU the host took away (steal) or that waited on disk."""

    KINDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

    def __init__(self) -> None:
        # Flat arrays, not a tuple per sample: the benchmark must not feed the cycle collector
        # whose pauses it measures.
        self._walls = array.array("d")
        self._values = array.array("q")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-times", daemon=True)

    def _sample(self) -> None:
        with open("/proc/stat", encoding="ascii") as stat:
            values = stat.readline().split()[1:9]
        self._walls.append(time.time())
        self._values.extend(int(value) for value in values)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def start(self) -> None:
        self._sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def shares(self, since: float = 0.0, until: float = float("inf")) -> dict[str, float]:
        """Each kind's share (%) of the CPU time between the samples around `since`..`until`."""
        width = len(self.KINDS)
        inside = [
            self._values[i * width : (i + 1) * width]
            for i, wall in enumerate(self._walls)
            if since - 0.15 <= wall <= until + 0.15
        ]
        if len(inside) < 2:
            return {}
        spent = [b - a for a, b in zip(inside[0], inside[-1], strict=True)]
        total = sum(spent) or 1
        return {kind: 100.0 * value / total for kind, value in zip(self.KINDS, spent, strict=True)}


def make_files(workdir: Path, paths: list[str]) -> None:
    """The queued recordings, 1 kB each, so the hung target's jobs reach the network."""
    data = bytes(1024)
    for path in paths:
        file = workdir / path
        if not file.parent.is_dir():
            file.parent.mkdir(parents=True)
        file.write_bytes(data)


async def open_queue(
    workdir: Path, items: list[dict[str, Any]], run: Any
) -> tuple[SyncQueue, float]:
    """The queue as HA finds it after a restart: `items` as jobs of the hung target in SQLite."""
    shift = time.time() - NOW  # build_items' due times are around NOW: move them around now
    for item in items:
        item["target"] = HUNG
        item["next_attempt"] += shift
        item["added"] += shift
    await run(make_files, workdir, [item["path"] for item in items])
    store = SqliteQueueStore(workdir / "queue.db")
    await run(store.write, {item["id"]: item for item in items})
    started = time.perf_counter()
    queue = await SyncQueue.open(store, run_in_executor=run)
    return queue, time.perf_counter() - started


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="executor")
    loop.set_default_executor(executor)

    async def run(func: Any, *call: Any) -> Any:
        return await loop.run_in_executor(None, func, *call)

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    logging.basicConfig(
        filename=OUT / "soak.log",
        level=logging.WARNING,  # HA's default for libraries; pm_dvr itself at INFO below
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    repeats = RepeatCounter()
    pm_logger = logging.getLogger("custom_components.pm_dvr")
    pm_logger.addHandler(repeats)
    pm_logger.setLevel(logging.INFO)

    # -- the index: a month of 8 cameras -------------------------------------------------------
    root = recordings_dir(OUT)
    started = time.perf_counter()
    index, held = traced(lambda: build_new(root, synthetic(args.clips, base_time(31))))
    build_s = time.perf_counter() - started
    status = status_of(index)

    # -- sync: the queue from disk, a hung Azure target, a folder target ------------------------
    silent = SilentServer().__enter__()
    session = aiohttp.ClientSession()
    items = build_items(args.jobs, 1)
    queue, queue_open_s = await open_queue(OUT, items, run)
    hung = await create_azure_target(
        AzureBlobConfig(
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};"
                f"AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{silent.port}/{ACCOUNT_NAME};"
            ),
            account_url=None,
            credential=None,
            container="hung",
        ),
        session,
        run_in_executor=run,
    )
    folder = FolderTarget(FolderConfig(OUT / "uploaded"), run_in_executor=run)
    closed_at: dict[str, float] = {}
    delays: list[float] = []
    hung_problem: list[float] = []
    t_start = time.monotonic()

    def finished(result: JobResult) -> None:
        if result.target_id == HEALTHY and result.ok and result.path in closed_at:
            delays.append(time.monotonic() - closed_at.pop(result.path))

    def target_status(target_id: str, state: TargetStatus) -> None:
        if target_id == HUNG and not state.ok and not hung_problem:
            hung_problem.append(time.monotonic() - t_start)

    engine = SyncEngine(
        OUT,
        queue,
        [
            TargetSpec(HUNG, hung, include_recordings=True),
            TargetSpec(HEALTHY, folder, include_recordings=True),
        ],
        run_in_executor=run,
        on_job_finished=finished,
        on_target_status=target_status,
    )
    engine.start()

    # -- clip close -> hub status and upload, on the loop ----------------------------------------
    status_ms: list[float] = []
    queued: set[asyncio.Task[int]] = set()

    def on_loop(clip: Clip) -> None:
        began = time.perf_counter()
        status()
        status_ms.append((time.perf_counter() - began) * 1000.0)
        rel = clip.path.relative_to(OUT).as_posix()
        closed_at[rel] = time.monotonic()
        task = loop.create_task(engine.enqueue_recording(rel))
        queued.add(task)
        task.add_done_callback(queued.discard)

    index.add_listener(lambda clip: loop.call_soon_threadsafe(on_loop, clip))

    # -- live cameras with motion ---------------------------------------------------------------
    media = make_media()
    server = RtspServer(mounts={f"/live{i}": f"file:{media}" for i in range(args.cameras)}).start()
    motion_results = [0]
    cameras = []
    for i in range(args.cameras):
        worker = MotionWorker(
            MotionConfig(), lambda *_: motion_results.__setitem__(0, motion_results[0] + 1)
        )
        session_i = StreamSession(f"live{i}", server.url(f"/live{i}"))
        session_i.add_sink(MotionSink(worker))
        recorder = Recorder(f"live{i}", OUT, index, 10.0)
        session_i.add_sink(recorder)
        session_i.start()
        cameras.append((session_i, worker, recorder))

    picks: list[float] = []
    probe = LoopProbe()
    until = loop.time() + args.minutes * 60.0

    async def pick_now_and_then() -> None:
        while loop.time() < until:
            picks.append(pick_ms(queue, HUNG))
            await asyncio.sleep(1.0)

    gc.collect()  # start from a full collection: growth below is what the run adds
    oldest_at_start = Counter(type(o).__qualname__ for o in gc.get_objects(2))
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    cpu_times = CpuTimes()
    cpu_times.start()
    print(f"running {args.minutes:g} min on Python {sys.version.split()[0]} ...", flush=True)
    try:
        await asyncio.gather(probe.run(until), pick_now_and_then())
        oldest_at_end = Counter(type(o).__qualname__ for o in gc.get_objects(2))
        # Python runs a full collection when it sees fit (none in most 10-minute runs): time
        # three now, with the cameras running and everything loaded, as the loop would wait.
        full_collections = []
        for _ in range(3):
            began = time.perf_counter()
            gc.collect()
            full_collections.append((time.perf_counter() - began) * 1000.0)
    finally:
        for session_i, worker, _ in cameras:
            await run(session_i.stop)
            await run(worker.stop)
        server.stop()
        await engine.stop()
        await session.close()
        silent.__exit__(None, None, None)
        executor.shutdown(wait=False, cancel_futures=True)
        gc.callbacks.remove(gc_pauses)
        cpu_times.stop()

    # -- the anchors ------------------------------------------------------------------------------
    anchor_pick = anchor_due_ms(items, time.time())  # the same jobs, due around now
    old = old_module(OLD_REF)
    old_index = build_old(old, root, synthetic(OLD_CLIPS, base_time(31)))
    old_status = status_of(old_index)
    old_ms = []
    for _ in range(5):
        began = time.perf_counter()
        old_status()
        old_ms.append((time.perf_counter() - began) * 1000.0)

    repeated = sorted(repeats.repeated.items(), key=lambda kv: -kv[1])
    return {
        "clips": args.clips,
        "build_s": build_s,
        "index_bytes_per_clip": held / args.clips,
        "queue_open_s": queue_open_s,
        "status_ms": status_ms,
        "old_status_ms": statistics.median(old_ms),
        "lags": probe.lags,
        "picks": picks,
        "anchor_pick_ms": anchor_pick,
        "delays": delays,
        "uploads_left": len(closed_at),
        "hung_problem_s": hung_problem[0] if hung_problem else None,
        "motion_results": motion_results[0],
        "live_clips": sum(r.stats.clips for _, _, r in cameras),
        "dropped": sum(r.stats.dropped_packets for _, _, r in cameras),
        "log_lines": repeats.lines,
        "repeated": repeated,
        "gc_pauses": gc_pauses.pauses,
        "spikes": [
            (wall, lag, cpu_times.shares(wall - lag - PROBE_PERIOD, wall))
            for wall, lag in probe.spikes
        ],
        "cpu_shares": cpu_times.shares(),
        "full_collections": full_collections,
        "oldest_generation": (oldest_at_start, oldest_at_end),
    }


def shares_text(shares: dict[str, float]) -> str:
    kinds = ("user", "nice", "system", "iowait", "steal", "idle")
    return ", ".join(f"{kind} {shares.get(kind, 0.0):.0f} %" for kind in kinds)


def report(r: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    lags_ms = [lag * 1000.0 for lag in r["lags"]]
    result = {
        "index_bytes_per_clip": round(r["index_bytes_per_clip"], 1),
        "status_update_ms": round(pct(r["status_ms"], 0.99), 4) if r["status_ms"] else 0.0,
        "loop_lag_p99_ms": round(pct(lags_ms, 0.99), 2),
        "loop_lag_max_ms": round(max(lags_ms, default=0.0), 2),
        "queue_pick_ms": round(statistics.median(r["picks"]), 4),
        "healthy_target_delay_s": round(max(r["delays"], default=float("nan")), 2),
        "repeated_log_lines": sum(count for _, count in r["repeated"]),
    }
    print(
        f"\nSoak: {args.minutes:g} min, {r['clips']:,} clips indexed + {args.cameras} live cameras "
        f"with motion, {args.jobs:,} jobs queued for a hung Azure target beside a folder target"
    )
    print(f"{'figure':38s} {'pm_dvr':>12s} {'anchor (old code)':>18s} {'ratio':>8s}  target")
    rows = [
        ("index bytes per clip", result["index_bytes_per_clip"], None, "<= 50"),
        ("hub status on clip close, p99 ms", result["status_update_ms"], r["old_status_ms"],
         "<= 1 (anchor: 400k clips)"),
        ("hub status, max ms", round(max(r["status_ms"], default=0.0), 4), None, ""),
        ("loop lag p99 ms", result["loop_lag_p99_ms"], None, "<= 5"),
        ("loop lag max ms", result["loop_lag_max_ms"], None, "<= 50"),
        ("queue pick median ms", result["queue_pick_ms"], r["anchor_pick_ms"], "<= 1"),
        ("queue pick max ms", round(max(r["picks"], default=0.0), 4), None, ""),
        ("healthy upload delay max s", result["healthy_target_delay_s"], None, "unaffected"),
        ("healthy upload delay median s", round(statistics.median(r["delays"]), 2)
         if r["delays"] else float("nan"), None, ""),
        ("log lines repeated within a minute", result["repeated_log_lines"], None, "0"),
    ]  # fmt: skip
    for name, ours, anchor, target in rows:
        ratio = f"{ours / anchor:.4f}" if anchor else ""
        anchor_text = f"{anchor:.3f}" if anchor is not None else "-"
        print(f"{name:38s} {ours:>12} {anchor_text:>18s} {ratio:>8s}  {target}")
    hung_after = r["hung_problem_s"]
    hung_text = f"after {hung_after:.0f} s" if hung_after is not None else "never"
    print(
        f"\nindex built in {r['build_s']:.1f} s; queue of {args.jobs:,} opened from SQLite in "
        f"{r['queue_open_s']:.2f} s; {r['live_clips']} live clips, {r['dropped']} packets "
        f"dropped, {len(r['delays'])} uploaded to the folder ({r['uploads_left']} not yet); "
        f"hung target shown as a problem {hung_text}; {r['motion_results']} motion results; "
        f"{r['log_lines']} pm_dvr log lines ({OUT / 'soak.log'}); {len(r['lags'])} loop probes"
    )
    full = [(ms, thread) for generation, ms, thread in r["gc_pauses"] if generation == 2]
    print(
        f"cycle collections: {len(r['gc_pauses'])}, of them {len(full)} full, longest young "
        f"{max((ms for g, ms, _ in r['gc_pauses'] if g < 2), default=0.0):.1f} ms"
    )
    for ms, thread in full:
        print(f"  full collection {ms:.1f} ms, in thread {thread}")
    timed = ", ".join(f"{ms:.1f}" for ms in r["full_collections"])
    print(f"full collections timed at the end (all loaded, cameras running): {timed} ms")
    start_types, end_types = r["oldest_generation"]
    start, end = start_types.total(), end_types.total()
    grown = (end_types - start_types).most_common(8)
    # CPython runs a full collection once the objects promoted to the oldest generation since
    # the last one reach a quarter of it; promoted objects that die count too, so the net
    # growth is a lower bound of that.
    print(
        f"oldest generation: {start:,} objects after a full collection, {end:,} after the run "
        f"({end - start:+,} net; a full collection comes after about {start // 4:,} promotions)"
    )
    print("  grown most: " + ", ".join(f"{name} +{count:,}" for name, count in grown))
    print("machine CPU time over the run: " + shares_text(r["cpu_shares"]))
    for wall, lag, shares in r["spikes"]:
        stamp = time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"
        print(f"  loop lag {lag * 1000:.1f} ms, woken at {stamp}; CPU then: {shares_text(shares)}")
    for (name, message), count in r["repeated"][:5]:
        print(f"  repeated {count}x: {name}: {message[:120]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--clips", type=int, default=2_073_600)
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    raw = asyncio.run(soak(args))
    result = report(raw, args)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
