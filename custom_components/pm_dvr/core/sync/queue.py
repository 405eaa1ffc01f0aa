"""The persistent upload queue: jobs in memory, a heap per target, changes written in batches.

Picking a target's next due job costs O(log n) and copies nothing. Each target has a heap of
(next_attempt, added, seq, id) entries; a job has at most one live entry (the `seq` it was last
pushed with), so an entry left behind by a change, a removal or a pick is simply skipped when it
reaches the top. A heap is rebuilt once it holds more dead entries than live ones, which keeps
every operation O(log n) amortised. A picked job is leased: it leaves its heap until the engine
records its outcome or `release`s it.

In memory each job is a plain tuple of its fields (`_pack`), not a dict: Python's cycle
collector, whose full collections hold the event loop, skips tuples of strings and numbers, but
Python 3.14 tracks every dict, so 100k queued jobs as dicts made each full collection 50 ms
longer. Callers still see mappings: `JobView`s that read the queue's current tuple.

Jobs that kept failing past their target's retry limit move to a failed list: kept (and
persisted) but never picked, until `requeue_failed` puts them back.

Persistence never rewrites the queue. A change marks its job dirty; at most once per
`save_delay` the dirty jobs, and only those, go to the store in batches of at most WRITE_BATCH,
in a worker thread, one batch at a time. `SqliteQueueStore` keeps a row per job in SQLite, so each batch is one atomic
commit: a crash or power cut loses at most the last `save_delay` of changes, never the file.
`retry_all` ("sync now") is not written: it only brings attempts forward.

One job (a dict, JSON-safe, as stored):
    {"id": "<hex>", "kind": "event" | "recording",
     "path": "events/<event_id>" | "recordings/<camera>/<YYYY-MM-DD>/<file>.mp4",
     "target": "<target id>", "attempts": 0, "next_attempt": <epoch seconds>,
     "last_error": None | "<non-secret text>", "added": <epoch seconds>,
     "first_failure": None | <epoch seconds of the first failed attempt>,
     "failed": None | <epoch seconds it moved to the failed list>,
     "deferred_delete": ["<relative file path>", ...]   # optional, see SyncEngine
    }
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
import contextlib
import heapq
import json
import logging
from pathlib import Path
import sqlite3
import threading
import time
from typing import Any, Literal, Protocol
import uuid

from .base import RunInExecutor, default_executor

_LOGGER = logging.getLogger(__name__)

type JobKind = Literal["event", "recording"]
type Job = dict[str, Any]
type JobView = Mapping[str, Any]

KINDS: tuple[JobKind, ...] = ("event", "recording")
SAVE_DELAY = 1.0
# Jobs written per commit: bounds the loop's share of a big write (requeueing or importing
# thousands of jobs) to a few milliseconds per batch.
WRITE_BATCH = 2000
# Dead heap entries tolerated beyond the live ones before a target's heap is rebuilt.
_REBUILD_SLACK = 1024
_DEFAULTS: dict[str, Any] = {
    "attempts": 0,
    "next_attempt": 0.0,
    "last_error": None,
    "added": 0.0,
    "first_failure": None,
    "failed": None,
}


class QueueStore(Protocol):
    """Where the queue keeps its jobs. Every method blocks: the queue calls them in a thread."""

    def load(self) -> list[Job]:
        """Every stored job, in the order they were first written."""

    def write(self, changes: Mapping[str, Job | None]) -> None:
        """Store these jobs and delete those mapped to None, all or nothing."""

    def close(self) -> None:
        """Release the storage; a later call may open it again."""


type HeapEntry = tuple[float, float, int, str]
"""One entry of a target's heap, (next_attempt, added, seq, job_id): ordered by time due, then
age, then push order. A plain tuple and not a NamedTuple: Python's cycle collector stops tracking
exact tuples of numbers and strings, so queued jobs add nothing to a full collection, which holds
the event loop (100k NamedTuples made each one 30 ms longer)."""


def _valid(item: Mapping[str, Any]) -> bool:
    return (
        isinstance(item.get("id"), str)
        and item.get("kind") in KINDS
        and isinstance(item.get("path"), str)
        and isinstance(item.get("target"), str)
        and isinstance(item.get("next_attempt", 0.0), int | float)
        and isinstance(item.get("added", 0.0), int | float)
    )


_FIELDS = (
    "id",
    "kind",
    "path",
    "target",
    "attempts",
    "next_attempt",
    "last_error",
    "added",
    "first_failure",
    "failed",
)
_DEFERRED = "deferred_delete"
_INDEX = {name: i for i, name in enumerate(_FIELDS)}
_ID, _TARGET, _NEXT, _ADDED = (_INDEX[f] for f in ("id", "target", "next_attempt", "added"))
type _Row = tuple[Any, ...]
"""A job in memory: the values of _FIELDS, then deferred_delete (a tuple, or None when the job
has none), then any other fields as sorted (name, value) pairs (or None)."""


def _pack(job: Mapping[str, Any]) -> _Row:
    deferred = job.get(_DEFERRED)
    extra = tuple(sorted((k, v) for k, v in job.items() if k not in _INDEX and k != _DEFERRED))
    return (
        *(job[name] for name in _FIELDS),
        tuple(deferred) if deferred is not None else None,
        extra or None,
    )


def _unpack(row: _Row) -> Job:
    job: Job = dict(zip(_FIELDS, row, strict=False))
    if row[-2] is not None:
        job[_DEFERRED] = list(row[-2])
    if row[-1] is not None:
        job.update(row[-1])
    return job


class _LiveJob(Mapping[str, Any]):
    """A read-only view of one job that shows its later changes (not a copy); after the job
    leaves the queue it shows the job as it was last seen."""

    __slots__ = ("_id", "_last", "_queue")

    def __init__(self, queue: SyncQueue, row: _Row) -> None:
        self._queue, self._id, self._last = queue, row[_ID], row

    def _row(self) -> _Row:
        row = self._queue.row(self._id)
        if row is not None:
            self._last = row
        return self._last

    def __getitem__(self, key: str) -> Any:
        row = self._row()
        if (i := _INDEX.get(key)) is not None:
            return row[i]
        return _unpack(row)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_unpack(self._row()))

    def __len__(self) -> int:
        return len(_unpack(self._row()))

    def __repr__(self) -> str:
        return f"JobView({_unpack(self._row())!r})"


def _copy(job: Mapping[str, Any]) -> Job:
    """A job's own copy (its values are scalars, except the deferred_delete list)."""
    copied = dict(job)
    if "deferred_delete" in copied:
        copied["deferred_delete"] = list(copied["deferred_delete"])
    return copied


class SyncQueue:
    """Jobs (one per path and target), indexed by target, path and due time."""

    def __init__(
        self,
        initial: Iterable[Mapping[str, Any]] | None = None,
        *,
        store: QueueStore | None = None,
        run_in_executor: RunInExecutor | None = None,
        clock: Callable[[], float] = time.time,
        save_delay: float = SAVE_DELAY,
    ) -> None:
        """Build the queue from stored jobs (plain Python, no loop: fine in a worker thread)."""
        self._store = store
        self._run = run_in_executor or default_executor()
        self._clock = clock
        self._save_delay = save_delay
        self._jobs: dict[str, _Row] = {}  # waiting or running
        self._failed: dict[str, _Row] = {}  # gave up; kept until requeued or removed
        self._failed_by_target: dict[str, set[str]] = {}
        self._by_key: dict[tuple[str, str, str], str] = {}  # (kind, path, target) -> id
        # (kind, path) -> ids; tuples, not sets: nothing per job for the cycle collector to scan
        self._by_path: dict[tuple[str, str], tuple[str, ...]] = {}
        self._by_target: dict[str, set[str]] = {}  # target -> ids, waiting, running or failed
        self._heaps: dict[str, list[HeapEntry]] = {}
        self._live: dict[str, int] = {}  # job id -> seq of its one live heap entry
        self._dead: dict[str, int] = {}  # target -> dead entries in its heap
        self._leased: set[str] = set()
        self._seq = 0
        self._listeners: list[Callable[[int], None]] = []
        self._dirty: set[str] = set()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._write_failed = False
        self._closed = False
        for item in initial or ():
            if not _valid(item):
                _LOGGER.warning("Dropping a malformed sync queue item")
                continue
            job: Job = {**_DEFAULTS, **_copy(item)}
            if (
                job["id"] in self._jobs
                or job["id"] in self._failed
                or self._key(job) in self._by_key
            ):
                continue
            self._index(job)
            if job["failed"] is not None:
                self._add_failed(job)
            else:
                row = self._jobs[job["id"]] = _pack(job)
                self._seq += 1
                self._live[job["id"]] = self._seq
                self._heaps.setdefault(job["target"], []).append(self._entry(row, self._seq))
        for heap in self._heaps.values():
            heapq.heapify(heap)

    @classmethod
    async def open(
        cls,
        store: QueueStore,
        *,
        run_in_executor: RunInExecutor | None = None,
        clock: Callable[[], float] = time.time,
        save_delay: float = SAVE_DELAY,
    ) -> SyncQueue:
        """Load the stored jobs and build the queue, both in a worker thread."""
        run = run_in_executor or default_executor()

        def build() -> SyncQueue:
            return cls(
                store.load(),
                store=store,
                run_in_executor=run,
                clock=clock,
                save_delay=save_delay,
            )

        return await run(build)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Jobs waiting or running (the failed list apart)."""
        return len(self._jobs)

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call listener(len(queue)) after every change."""
        self._listeners.append(listener)

    def jobs(self) -> list[Job]:
        """Copies of the waiting and running jobs, oldest first (O(n): for tools and tests)."""
        return [_unpack(row) for row in self._jobs.values()]

    def failed_jobs(self, target: str | None = None) -> list[Job]:
        """Copies of the jobs on the failed list (of one target)."""
        if target is None:
            return [_unpack(row) for row in self._failed.values()]
        return [_unpack(self._failed[i]) for i in sorted(self._failed_by_target.get(target, ()))]

    def failed_count(self, target: str) -> int:
        """How many of a target's jobs are on the failed list (O(1))."""
        return len(self._failed_by_target.get(target, ()))

    def targets(self) -> set[str]:
        """The targets that have jobs (waiting, running or failed)."""
        return set(self._by_target)

    def count(self, target: str) -> int:
        """How many of a target's jobs wait or run (O(1))."""
        return len(self._by_target.get(target, ())) - self.failed_count(target)

    def row(self, job_id: str) -> _Row | None:
        """A job's tuple as stored in memory (waiting, running or failed), or None."""
        return self._jobs.get(job_id) or self._failed.get(job_id)

    def get(self, job_id: str) -> JobView | None:
        """A read-only view of one job (waiting, running or failed), or None. Not a copy."""
        row = self.row(job_id)
        return _LiveJob(self, row) if row is not None else None

    def find(self, kind: JobKind, path: str, target: str) -> JobView | None:
        """The job for this path and target, if any (failed ones included)."""
        job_id = self._by_key.get((kind, path, target))
        return self.get(job_id) if job_id is not None else None

    def siblings(self, job_id: str) -> list[JobView]:
        """Other jobs for the same local path (other targets), failed ones included."""
        job = _unpack(self._jobs.get(job_id) or self._failed[job_id])
        views: list[JobView] = []
        for other in sorted(self._by_path.get((job["kind"], job["path"]), ())):
            if other != job_id and (view := self.get(other)) is not None:
                views.append(view)
        return views

    def next_due(self, target: str) -> float | None:
        """When the target's earliest waiting job is due; None when it has none."""
        top = self._top(target)
        return top[0] if top is not None else None

    def heap(self, target: str) -> Sequence[HeapEntry]:
        """The target's heap as it is, dead entries included (for tests and benchmarks)."""
        return tuple(self._heaps.get(target, ()))

    def is_live(self, entry: HeapEntry) -> bool:
        """Whether a heap entry still stands for its job."""
        _, _, seq, job_id = entry
        return self._live.get(job_id) == seq

    # ------------------------------------------------------------------ picking

    def take_due(self, target: str, now: float) -> JobView | None:
        """Lease the target's earliest job due by `now`: O(log n), a view and not a copy.

        The job leaves the heap until `release` (or its removal, or a move to the failed list).
        """
        top = self._top(target)
        if top is None or top[0] > now:
            return None
        heapq.heappop(self._heaps[target])
        job_id = top[3]
        del self._live[job_id]
        self._leased.add(job_id)
        return _LiveJob(self, self._jobs[job_id])

    def release(self, job_id: str) -> None:
        """End a lease: the job (if still waiting) is back in its heap at its next_attempt."""
        if job_id in self._leased:
            self._leased.discard(job_id)
            if (row := self._jobs.get(job_id)) is not None:
                self._push(row)

    def _top(self, target: str) -> HeapEntry | None:
        heap = self._heaps.get(target)
        while heap:
            top = heap[0]
            _, _, seq, job_id = top
            if self._live.get(job_id) == seq:
                return top
            heapq.heappop(heap)
            self._dead[target] = max(0, self._dead.get(target, 0) - 1)
        return None

    # ------------------------------------------------------------------ changing

    async def add(self, kind: JobKind, path: str, target: str) -> JobView | None:
        """Queue a job; None when this path already has a job for that target."""
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        if (kind, path, target) in self._by_key:
            return None
        now = self._clock()
        job: Job = {
            **_DEFAULTS,
            "id": uuid.uuid4().hex,
            "kind": kind,
            "path": path,
            "target": target,
            "next_attempt": now,
            "added": now,
        }
        row = self._jobs[job["id"]] = _pack(job)
        self._index(job)
        self._push(row)
        self._changed(job["id"])
        return _LiveJob(self, row)

    async def update(self, job_id: str, **changes: Any) -> None:
        """Change fields of a job, waiting, running or failed (ignored when it is gone)."""
        row = self.row(job_id)
        if row is None:
            return
        job = _unpack(row)
        moved = "next_attempt" in changes and changes["next_attempt"] != job["next_attempt"]
        job.update(_copy(changes))
        row = (self._jobs if job_id in self._jobs else self._failed)[job_id] = _pack(job)
        if moved and job_id in self._live:
            self._unpush(job)
            self._push(row)
        self._changed(job_id)

    async def fail(self, job_id: str, **changes: Any) -> None:
        """Move a job to the failed list (with these last changes): it is not picked again."""
        row = self._jobs.pop(job_id, None)
        if row is None:
            return
        job = _unpack(row)
        job.update(_copy(changes))
        job["failed"] = self._clock()
        if job_id in self._live:
            self._unpush(job)
        self._leased.discard(job_id)
        self._add_failed(job)
        self._changed(job_id)

    async def requeue_failed(self, target: str) -> int:
        """Put a target's failed jobs back, due now and with a fresh retry budget."""
        now = self._clock()
        ids = list(self._failed_by_target.get(target, ()))
        for job_id in sorted(ids, key=lambda i: self._failed[i][_ADDED]):
            failed = self._drop_failed(job_id)
            assert failed is not None
            job = _unpack(failed) | {
                "attempts": 0,
                "first_failure": None,
                "failed": None,
                "next_attempt": now,
            }
            row = self._jobs[job_id] = _pack(job)
            self._push(row)
            self._changed(job_id, notify=False)
        if ids:
            self._notify()
        return len(ids)

    async def retry_all(self, now: float, target: str | None = None) -> None:
        """Make every waiting job (of one target) due at `now`; not persisted, see above."""
        targets = [target] if target is not None else list(self._heaps)
        for name in targets:
            ids = [i for i in self._by_target.get(name, ()) if i in self._jobs]
            for job_id in ids:
                row = self._jobs[job_id]
                if row[_NEXT] > now:
                    self._jobs[job_id] = (*row[:_NEXT], now, *row[_NEXT + 1 :])
            self._rebuild(name)

    async def remove(self, job_id: str) -> JobView | None:
        """Take a job out of the queue or the failed list; returns it, or None."""
        row = self._jobs.pop(job_id, None) or self._drop_failed(job_id)
        if row is None:
            return None
        job = _unpack(row)
        if job_id in self._live:
            self._unpush(job)
        self._leased.discard(job_id)
        self._unindex(job)
        self._changed(job_id)
        return _LiveJob(self, row)

    async def remove_target(self, target: str) -> int:
        """Drop every job of a target, failed ones too (the target was deleted)."""
        ids = list(self._by_target.get(target, ()))
        for job_id in ids:
            row = self._jobs.pop(job_id, None) or self._drop_failed(job_id)
            assert row is not None
            self._live.pop(job_id, None)
            self._leased.discard(job_id)
            self._unindex(_unpack(row))
            self._changed(job_id, notify=False)
        self._heaps.pop(target, None)
        self._dead.pop(target, None)
        if ids:
            self._notify()
        return len(ids)

    async def import_items(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Take over jobs kept elsewhere before (an older format); returns how many were new."""
        added = 0
        for item in items:
            if not _valid(item) or item["id"] in self._jobs or item["id"] in self._failed:
                continue
            job: Job = {**_DEFAULTS, **_copy(item)}
            if self._key(job) in self._by_key:
                continue
            self._index(job)
            if job["failed"] is not None:
                self._add_failed(job)
            else:
                row = self._jobs[job["id"]] = _pack(job)
                self._push(row)
            self._changed(job["id"], notify=False)
            added += 1
        if added:
            self._notify()
        return added

    # ------------------------------------------------------------------ indexes and heaps

    @staticmethod
    def _key(job: Mapping[str, Any]) -> tuple[str, str, str]:
        return job["kind"], job["path"], job["target"]

    @staticmethod
    def _entry(row: _Row, seq: int) -> HeapEntry:
        return float(row[_NEXT]), float(row[_ADDED]), seq, row[_ID]

    def _index(self, job: Job) -> None:
        self._by_key[self._key(job)] = job["id"]
        path = (job["kind"], job["path"])
        if job["id"] not in (ids := self._by_path.get(path, ())):
            self._by_path[path] = (*ids, job["id"])
        self._by_target.setdefault(job["target"], set()).add(job["id"])

    def _unindex(self, job: Job) -> None:
        self._by_key.pop(self._key(job), None)
        path = (job["kind"], job["path"])
        others = tuple(i for i in self._by_path.get(path, ()) if i != job["id"])
        if others:
            self._by_path[path] = others
        else:
            self._by_path.pop(path, None)
        if (ids := self._by_target.get(job["target"])) is not None:
            ids.discard(job["id"])
            if not ids:
                del self._by_target[job["target"]]

    def _add_failed(self, job: Job) -> None:
        self._failed[job["id"]] = _pack(job)
        self._failed_by_target.setdefault(job["target"], set()).add(job["id"])

    def _drop_failed(self, job_id: str) -> _Row | None:
        row = self._failed.pop(job_id, None)
        if row is not None:
            ids = self._failed_by_target[row[_TARGET]]
            ids.discard(job_id)
            if not ids:
                del self._failed_by_target[row[_TARGET]]
        return row

    def _push(self, row: _Row) -> None:
        self._seq += 1
        self._live[row[_ID]] = self._seq
        heapq.heappush(self._heaps.setdefault(row[_TARGET], []), self._entry(row, self._seq))

    def _unpush(self, job: Job) -> None:
        """Leave the job's heap entry dead; rebuild the heap when dead entries pile up."""
        del self._live[job["id"]]
        target = job["target"]
        dead = self._dead[target] = self._dead.get(target, 0) + 1
        if dead > len(self._heaps[target]) - dead + _REBUILD_SLACK:
            self._rebuild(target)

    def _rebuild(self, target: str) -> None:
        """A fresh heap of the target's waiting, unleased jobs (O(k))."""
        heap: list[HeapEntry] = []
        for job_id in self._by_target.get(target, ()):
            row = self._jobs.get(job_id)
            if row is not None and job_id not in self._leased:
                self._seq += 1
                self._live[job_id] = self._seq
                heap.append(self._entry(row, self._seq))
        heapq.heapify(heap)
        self._heaps[target] = heap
        self._dead[target] = 0

    # ------------------------------------------------------------------ persistence

    def _changed(self, job_id: str, notify: bool = True) -> None:
        if self._store is not None:
            self._dirty.add(job_id)
            self._schedule_flush()
        if notify:
            self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(len(self._jobs))

    def _schedule_flush(self) -> None:
        if self._flush_timer is not None or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._flush_timer = loop.call_later(self._save_delay, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_timer = None
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(
                self.flush(), name="pm_dvr sync queue save"
            )
        else:  # a batch is being written: look again once it is
            self._schedule_flush()

    async def flush(self) -> None:
        """Write the pending changes now (one batch at a time, in a worker thread)."""
        if self._store is None:
            return
        async with self._write_lock:
            while self._dirty:
                if len(self._dirty) <= WRITE_BATCH:
                    batch, self._dirty = self._dirty, set()
                else:
                    batch = {self._dirty.pop() for _ in range(WRITE_BATCH)}
                changes: dict[str, Job | None] = {}
                for job_id in batch:
                    row = self.row(job_id)
                    changes[job_id] = _unpack(row) if row is not None else None
                try:
                    await self._run(self._store.write, changes)
                except (OSError, sqlite3.Error) as err:
                    self._dirty |= batch  # kept for the next try
                    if not self._write_failed:
                        _LOGGER.warning("Cannot save the sync queue (will retry): %s", err)
                    self._write_failed = True
                    if not self._closed:
                        self._schedule_flush()
                    return
                if self._write_failed:
                    _LOGGER.info("The sync queue is saved again")
                    self._write_failed = False

    async def close(self) -> None:
        """Write what is pending and close the store. Later changes are kept (no timer writes
        them): another flush() or close() writes them, opening the store again."""
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._flush_task is not None and not self._flush_task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        await self.flush()
        if self._store is not None:
            await self._run(self._store.close)


class SqliteQueueStore:
    """The queue in an SQLite file: a row per job, each batch of changes one atomic commit.

    SQLite's rollback journal with full fsync makes a commit all or nothing across crashes and
    power cuts. A file that is not a database (damaged) is moved aside and the queue starts
    empty, with a warning. Calls come from worker threads, one at a time; a lock makes sure.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            try:
                db.execute("PRAGMA synchronous=FULL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS jobs ("
                    " seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, data TEXT NOT NULL)"
                )
            except sqlite3.Error:
                db.close()
                raise
            self._db = db
        return self._db

    def load(self) -> list[Job]:
        """Every stored job in the order first written; a damaged file is moved aside."""
        with self._lock:
            try:
                rows = self._connect().execute("SELECT data FROM jobs ORDER BY seq").fetchall()
            except sqlite3.OperationalError:  # cannot open or locked: not a damaged file
                raise
            except sqlite3.DatabaseError:
                self._set_aside()
                return []
        jobs: list[Job] = []
        for (data,) in rows:
            with contextlib.suppress(ValueError):
                item = json.loads(data)
                if isinstance(item, dict):
                    jobs.append(item)
        return jobs

    def _set_aside(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        with contextlib.suppress(OSError):
            self.path.replace(aside)
        _LOGGER.warning("Sync queue file %s was damaged; moved to %s", self.path, aside.name)

    def write(self, changes: Mapping[str, Job | None]) -> None:
        """Upsert the jobs and delete the ids mapped to None, in one transaction."""
        upserts = [(job_id, json.dumps(job)) for job_id, job in changes.items() if job is not None]
        deletes = [(job_id,) for job_id, job in changes.items() if job is None]
        with self._lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO jobs (id, data) VALUES (?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                    upserts,
                )
                db.executemany("DELETE FROM jobs WHERE id = ?", deletes)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (the next call opens it again)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
