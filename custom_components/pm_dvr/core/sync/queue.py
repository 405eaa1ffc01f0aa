"""The persistent upload queue: jobs in an in-memory SQLite table, changes written in batches.

Picking a target's next due job is one indexed lookup, O(log n), and copies nothing: the table
has an index on (target, state, next_attempt, added, seq), so the earliest waiting job of a
target is the first entry of its part of that index. A picked job is leased (its state says so)
until the engine records its outcome or `release`s it. Jobs that kept failing past their
target's retry limit are on the failed list (FAILED): kept and persisted but never picked,
until `requeue_failed` puts them back. Triggers keep a count per target and state, so counts
cost O(1) too.

Why a table and not dicts and heaps: Python's cycle collector scans every tracked object on a
full collection, and holds the GIL, so the event loop, meanwhile. Jobs in Python containers, even
as tuples, cost it about 8 references each (100k jobs made each full collection 9 ms longer on
Python 3.13 and 27 ms on 3.14); rows in SQLite cost it nothing. Bulk changes (sync now, requeue,
removing a target) go in chunks of WRITE_BATCH jobs with the loop free between them.

Persistence never rewrites the queue. A change marks its job dirty; at most once per
`save_delay` the dirty jobs, and only those, go to the store in batches of at most WRITE_BATCH,
in a worker thread, one batch at a time. `SqliteQueueStore` keeps a row per job in an SQLite
file, so each batch is one atomic commit: a crash or power cut loses at most the last
`save_delay` of changes, never the file. `retry_all` ("sync now") is not written: it only
brings attempts forward.

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
import json
import logging
from pathlib import Path
import sqlite3
import threading
import time
from typing import Any, Final, Literal, Protocol
import uuid

from .base import RunInExecutor, default_executor

_LOGGER = logging.getLogger(__name__)

type JobKind = Literal["event", "recording"]
type Job = dict[str, Any]
type JobView = Mapping[str, Any]

KINDS: tuple[JobKind, ...] = ("event", "recording")
SAVE_DELAY = 1.0
# Jobs per commit and per chunk of a bulk change: bounds the loop's share of a big change
# (sync now, requeueing or importing thousands of jobs) to a few milliseconds at a time.
WRITE_BATCH = 2000
_DEFAULTS: dict[str, Any] = {
    "attempts": 0,
    "next_attempt": 0.0,
    "last_error": None,
    "added": 0.0,
    "first_failure": None,
    "failed": None,
}
_FIELDS = ("id", "kind", "path", "target", *_DEFAULTS)
_DEFERRED = "deferred_delete"
_SCALARS = (str, int, float, type(None))
WAITING: Final = 0
LEASED: Final = 1
FAILED: Final = 2
# SQL the queue runs on its in-memory table, and only there (tests allow it on the loop: no I/O).
IN_MEMORY_SQL: Final = ("core/sync/queue.py", ("_create", "_rows", "_change", "_change_many"))

_SCHEMA = """
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, path TEXT NOT NULL,
    target TEXT NOT NULL, attempts, next_attempt NOT NULL, last_error, added NOT NULL,
    first_failure, failed, deferred TEXT, extra TEXT, state INTEGER NOT NULL);
CREATE UNIQUE INDEX jobs_by_key ON jobs (kind, path, target);
CREATE INDEX jobs_due ON jobs (target, state, next_attempt, added, seq);
CREATE TABLE counts (
    target TEXT NOT NULL, state INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (target, state)) WITHOUT ROWID;
CREATE TRIGGER jobs_added AFTER INSERT ON jobs BEGIN
    INSERT INTO counts VALUES (new.target, new.state, 1)
    ON CONFLICT (target, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jobs_removed AFTER DELETE ON jobs BEGIN
    UPDATE counts SET n = n - 1 WHERE target = old.target AND state = old.state;
END;
CREATE TRIGGER jobs_moved AFTER UPDATE OF target, state ON jobs
WHEN old.target IS NOT new.target OR old.state IS NOT new.state BEGIN
    UPDATE counts SET n = n - 1 WHERE target = old.target AND state = old.state;
    INSERT INTO counts VALUES (new.target, new.state, 1)
    ON CONFLICT (target, state) DO UPDATE SET n = n + 1;
END;
"""
_COLUMNS = ", ".join((*_FIELDS, "deferred", "extra", "state"))
_INSERT = f"INSERT OR IGNORE INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * (len(_FIELDS) + 3))})"
_UPDATE = f"UPDATE jobs SET ({_COLUMNS}) = ({', '.join('?' * (len(_FIELDS) + 3))}) WHERE id = ?"
_SELECT = f"SELECT {_COLUMNS} FROM jobs"
_NEXT_DUE = (
    f"{_SELECT} WHERE target = ? AND state = {WAITING} ORDER BY next_attempt, added, seq LIMIT 1"
)
_NEXT = _FIELDS.index("next_attempt")
_TAKE = (
    f"UPDATE jobs SET state = {LEASED} WHERE seq = (SELECT seq FROM jobs WHERE target = ?"
    f" AND state = {WAITING} ORDER BY next_attempt, added, seq LIMIT 1) AND next_attempt <= ?"
    f" RETURNING {_COLUMNS}"
)
type _Row = tuple[Any, ...]


class QueueStore(Protocol):
    """Where the queue keeps its jobs. Every method blocks: the queue calls them in a thread."""

    def load(self) -> list[Job]:
        """Every stored job, in the order they were first written."""

    def write(self, changes: Mapping[str, Job | None]) -> None:
        """Store these jobs and delete those mapped to None, all or nothing."""

    def close(self) -> None:
        """Release the storage; a later call may open it again."""


def _valid(item: Mapping[str, Any]) -> bool:
    return (
        isinstance(item.get("id"), str)
        and item.get("kind") in KINDS
        and isinstance(item.get("path"), str)
        and isinstance(item.get("target"), str)
        and isinstance(item.get("next_attempt", 0.0), int | float)
        and isinstance(item.get("added", 0.0), int | float)
        and all(isinstance(item.get(name), _SCALARS) for name in _DEFAULTS)
    )


def _pack(job: Mapping[str, Any], state: int) -> _Row:
    """A job as the table's columns (deferred_delete and unknown fields as JSON)."""
    deferred = job.get(_DEFERRED)
    extra = {k: v for k, v in job.items() if k not in _FIELDS and k != _DEFERRED}
    return (
        *(job[name] for name in _FIELDS),
        json.dumps(list(deferred)) if deferred is not None else None,
        json.dumps(extra) if extra else None,
        state,
    )


def _unpack(row: _Row) -> Job:
    """The job (a new dict) from its columns as _SELECT reads them."""
    job: Job = dict(zip(_FIELDS, row, strict=False))
    deferred, extra = row[len(_FIELDS)], row[len(_FIELDS) + 1]
    if deferred is not None:
        job[_DEFERRED] = json.loads(deferred)
    if extra is not None:
        job.update(json.loads(extra))
    return job


class _LiveJob(Mapping[str, Any]):
    """A read-only view of one job that shows its later changes (not a copy); after the job
    leaves the queue it shows the job as it was last seen."""

    __slots__ = ("_id", "_last", "_read")

    def __init__(self, read: Callable[[str], Job | None], job: Job) -> None:
        self._read, self._id, self._last = read, job["id"], job

    def _job(self) -> Job:
        job = self._read(self._id)
        if job is not None:
            self._last = job
        return self._last

    def __getitem__(self, key: str) -> Any:
        return self._job()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._job())

    def __len__(self) -> int:
        return len(self._job())

    def __repr__(self) -> str:
        return f"JobView({self._job()!r})"


def _copy(job: Mapping[str, Any]) -> Job:
    """A job's own copy (its values are scalars, except the deferred_delete list)."""
    copied = dict(job)
    if _DEFERRED in copied:
        copied[_DEFERRED] = list(copied[_DEFERRED])
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
        """Build the queue from stored jobs (no loop needed: fine in a worker thread)."""
        self._store = store
        self._run = run_in_executor or default_executor()
        self._clock = clock
        self._save_delay = save_delay
        # In memory only, built here and then used from the loop's thread alone.
        self._db = self._create()
        self._listeners: list[Callable[[int], None]] = []
        self._dirty: set[str] = set()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._write_failed = False
        self._closed = False
        rows = []
        for item in initial or ():
            if not _valid(item):
                _LOGGER.warning("Dropping a malformed sync queue item")
                continue
            job: Job = {**_DEFAULTS, **item}
            rows.append(_pack(job, WAITING if job["failed"] is None else FAILED))
        self._change_many(_INSERT, rows)  # a repeated id or path and target: the first stays

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

    # ------------------------------------------------------------------ the table

    @staticmethod
    def _create() -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.executescript(_SCHEMA)
        return db

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[_Row]:
        return self._db.execute(sql, tuple(params)).fetchall()

    def _change(self, sql: str, params: Iterable[Any] = ()) -> int:
        return self._db.execute(sql, tuple(params)).rowcount

    def _change_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.execute("BEGIN")
        try:
            self._db.executemany(sql, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _row(self, job_id: str) -> _Row | None:
        rows = self._rows(f"{_SELECT} WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def _read(self, job_id: str) -> Job | None:
        row = self._row(job_id)
        return _unpack(row) if row is not None else None

    def _read_many(self, job_ids: Iterable[str]) -> dict[str, Job]:
        ids = list(job_ids)
        rows = self._rows(f"{_SELECT} WHERE id IN ({', '.join('?' * len(ids))})", ids)
        return {row[0]: _unpack(row) for row in rows}

    def _write(self, job: Job, state: int) -> None:
        self._change(_UPDATE, (*_pack(job, state), job["id"]))

    def _count(self, where: str, params: Iterable[Any] = ()) -> int:
        return int(self._rows(f"SELECT TOTAL(n) FROM counts WHERE {where}", params)[0][0])

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Jobs waiting or running (the failed list apart)."""
        return self._count(f"state < {FAILED}")

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call listener(len(queue)) after every change."""
        self._listeners.append(listener)

    def jobs(self) -> list[Job]:
        """Copies of the waiting and running jobs, oldest first (O(n): for tools and tests)."""
        return [
            _unpack(row) for row in self._rows(f"{_SELECT} WHERE state < {FAILED} ORDER BY seq")
        ]

    def failed_jobs(self, target: str | None = None) -> list[Job]:
        """Copies of the jobs on the failed list (of one target)."""
        if target is None:
            rows = self._rows(f"{_SELECT} WHERE state = {FAILED} ORDER BY seq")
        else:
            rows = self._rows(
                f"{_SELECT} WHERE target = ? AND state = {FAILED} ORDER BY id", (target,)
            )
        return [_unpack(row) for row in rows]

    def failed_count(self, target: str) -> int:
        """How many of a target's jobs are on the failed list (O(1))."""
        return self._count(f"target = ? AND state = {FAILED}", (target,))

    def targets(self) -> set[str]:
        """The targets that have jobs (waiting, running or failed)."""
        return {row[0] for row in self._rows("SELECT target FROM counts WHERE n > 0")}

    def count(self, target: str) -> int:
        """How many of a target's jobs wait or run (O(1))."""
        return self._count(f"target = ? AND state < {FAILED}", (target,))

    def get(self, job_id: str) -> JobView | None:
        """A read-only view of one job (waiting, running or failed), or None. Not a copy."""
        job = self._read(job_id)
        return _LiveJob(self._read, job) if job is not None else None

    def find(self, kind: JobKind, path: str, target: str) -> JobView | None:
        """The job for this path and target, if any (failed ones included)."""
        rows = self._rows(
            f"{_SELECT} WHERE kind = ? AND path = ? AND target = ?", (kind, path, target)
        )
        return _LiveJob(self._read, _unpack(rows[0])) if rows else None

    def siblings(self, job_id: str) -> list[JobView]:
        """Other jobs for the same local path (other targets), failed ones included."""
        job = self._read(job_id)
        if job is None:
            raise KeyError(job_id)
        rows = self._rows(
            f"{_SELECT} WHERE kind = ? AND path = ? AND id != ? ORDER BY id",
            (job["kind"], job["path"], job_id),
        )
        return [_LiveJob(self._read, _unpack(row)) for row in rows]

    def next_due(self, target: str) -> float | None:
        """When the target's earliest waiting job is due; None when it has none."""
        rows = self._rows(_NEXT_DUE, (target,))
        return float(rows[0][_NEXT]) if rows else None

    def pick_plan(self) -> str:
        """How SQLite finds a target's next due job (for tests and benchmarks)."""
        rows = self._rows(f"EXPLAIN QUERY PLAN {_TAKE}", ("t", 0.0))
        return "\n".join(str(row[-1]) for row in rows)

    # ------------------------------------------------------------------ picking

    def take_due(self, target: str, now: float) -> JobView | None:
        """Lease the target's earliest job due by `now`: O(log n), a view and not a copy.

        The job is not picked again until `release` (or its removal, or a move to the failed
        list).
        """
        rows = self._rows(_TAKE, (target, now))
        return _LiveJob(self._read, _unpack(rows[0])) if rows else None

    def release(self, job_id: str) -> None:
        """End a lease: the job (if still waiting) is due again at its next_attempt."""
        self._change(
            f"UPDATE jobs SET state = {WAITING} WHERE id = ? AND state = {LEASED}", (job_id,)
        )

    # ------------------------------------------------------------------ changing

    async def add(self, kind: JobKind, path: str, target: str) -> JobView | None:
        """Queue a job; None when this path already has a job for that target."""
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
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
        if not self._change(_INSERT, _pack(job, WAITING)):
            return None
        self._changed(job["id"])
        return _LiveJob(self._read, job)

    async def update(self, job_id: str, **changes: Any) -> None:
        """Change fields of a job, waiting, running or failed (ignored when it is gone)."""
        row = self._row(job_id)
        if row is None:
            return
        job = _unpack(row)
        job.update(_copy(changes))
        self._write(job, row[-1])  # in the state it is in: waiting, leased or failed
        self._changed(job_id)

    async def fail(self, job_id: str, **changes: Any) -> None:
        """Move a job to the failed list (with these last changes): it is not picked again."""
        job = self._read(job_id)
        if job is None or job["failed"] is not None:
            return
        job.update(_copy(changes))
        job["failed"] = self._clock()
        self._write(job, FAILED)
        self._changed(job_id)

    async def requeue_failed(self, target: str) -> int:
        """Put a target's failed jobs back, due now and with a fresh retry budget."""
        now, moved = self._clock(), 0
        while ids := self._rows(
            f"SELECT id FROM jobs WHERE target = ? AND state = {FAILED} LIMIT ?",
            (target, WRITE_BATCH),
        ):
            self._change_many(
                "UPDATE jobs SET attempts = 0, first_failure = NULL, failed = NULL,"
                f" next_attempt = ?, state = {WAITING} WHERE id = ?",
                ((now, job_id) for (job_id,) in ids),
            )
            for (job_id,) in ids:
                self._changed(job_id, notify=False)
            moved += len(ids)
            await asyncio.sleep(0)
        if moved:
            self._notify()
        return moved

    async def retry_all(self, now: float, target: str | None = None) -> None:
        """Make every waiting job (of one target) due at `now`; not persisted, see above."""
        for name in [target] if target is not None else sorted(self.targets()):
            changed = WRITE_BATCH
            while changed == WRITE_BATCH:  # a full chunk: there may be more
                changed = self._change(
                    "UPDATE jobs SET next_attempt = ? WHERE seq IN (SELECT seq FROM jobs"
                    f" WHERE target = ? AND state IN ({WAITING}, {LEASED}) AND next_attempt > ?"
                    " LIMIT ?)",
                    (now, name, now, WRITE_BATCH),
                )
                await asyncio.sleep(0)

    async def remove(self, job_id: str) -> JobView | None:
        """Take a job out of the queue or the failed list; returns it, or None."""
        job = self._read(job_id)
        if job is None:
            return None
        self._change("DELETE FROM jobs WHERE id = ?", (job_id,))
        self._changed(job_id)
        return _LiveJob(self._read, job)

    async def remove_target(self, target: str) -> int:
        """Drop every job of a target, failed ones too (the target was deleted)."""
        removed = 0
        while ids := self._rows(
            "SELECT id FROM jobs WHERE target = ? LIMIT ?", (target, WRITE_BATCH)
        ):
            self._change_many("DELETE FROM jobs WHERE id = ?", ids)
            for (job_id,) in ids:
                self._changed(job_id, notify=False)
            removed += len(ids)
            await asyncio.sleep(0)
        if removed:
            self._notify()
        return removed

    async def import_items(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Take over jobs kept elsewhere before (an older format); returns how many were new."""
        added = 0
        for item in items:
            if not _valid(item):
                continue
            job: Job = {**_DEFAULTS, **item}
            if self._change(_INSERT, _pack(job, WAITING if job["failed"] is None else FAILED)):
                self._changed(job["id"], notify=False)
                added += 1
                if added % WRITE_BATCH == 0:
                    await asyncio.sleep(0)
        if added:
            self._notify()
        return added

    # ------------------------------------------------------------------ persistence

    def _changed(self, job_id: str, notify: bool = True) -> None:
        if self._store is not None:
            self._dirty.add(job_id)
            self._schedule_flush()
        if notify:
            self._notify()

    def _notify(self) -> None:
        if self._listeners:
            size = len(self)
            for listener in self._listeners:
                listener(size)

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
                found = self._read_many(batch)
                changes: dict[str, Job | None] = {job_id: found.get(job_id) for job_id in batch}
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
