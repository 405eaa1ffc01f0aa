"""The sync engine: works the queue against the targets, with retries, filters and safe deletes.

Remote layout (below each target's own prefix or path):
    event      `<event_id>/<camera>/<clip>.mp4` ..., then `<event_id>/event.json` last, so a
               remote event.json means the whole event is there
    recording  `recordings/<camera>/<YYYY-MM-DD>/<file>.mp4` (as on disk)

A local file is deleted only after it was verified (size and MD5) on a target that has
`delete_after_upload`, and only when no other target still has a job for the same path: the last
of those jobs performs the deferred delete once it succeeds too.

Each target has its own lane: a runner task that leases due jobs of the target from the
queue and runs up to `concurrency` of them, so a hung or slow target never delays another. A
runner sleeps until its next job is due, or until it is woken: by a job it can start now (a new
one, a retry brought forward), or by one of its own jobs ending. A lane that is held, or has no
free slot, is not woken at all, and wake-ups that come before the runner looks coalesce.

A failed attempt backs off (`Backoff`, up to its cap). A job still failing `retry_limit` seconds
after its first failure (the target's setting) moves to the queue's failed list and stays there
until `retry_failed`. A refused login (or a missing rclone, or settings that cannot work) holds
the whole target: nothing is tried until `set_target` (new settings), `retry_target` or `sync_now`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Iterator
import contextlib
from dataclasses import dataclass, field
import logging
from pathlib import Path, PurePosixPath
import random
import time
from typing import Any

from ..event import read_event
from ..layout import EVENT_FILE
from .base import RunInExecutor, SyncTarget, default_executor, first_error, join_remote
from .errors import (
    LocalFileMissingError,
    RcloneNotInstalledError,
    SyncError,
    TargetAuthError,
    TargetConfigError,
    redact,
)
from .queue import JobKind, JobView, SyncQueue

_LOGGER = logging.getLogger(__name__)

EVENTS_DIR = "events"
RECORDINGS_DIR = "recordings"

# Failures that retrying cannot fix: hold the target until the user acts (reauth, install).
_HOLD_ERRORS = (TargetAuthError, RcloneNotInstalledError, TargetConfigError)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target as the engine sees it: the transport plus what to send and whether to delete."""

    target_id: str
    target: SyncTarget
    delete_after_upload: bool = False
    include_events: bool = True
    include_recordings: bool = False
    cameras: frozenset[str] | None = None
    labels: frozenset[str] | None = None
    retry_limit: float | None = None  # seconds from a job's first failure to the failed list

    def wants_camera(self, camera: str) -> bool:
        """True when the camera filter is off or lists this camera."""
        return self.cameras is None or camera in self.cameras


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff between attempts of one job (seconds), with a little jitter."""

    initial: float = 30.0
    factor: float = 2.0
    maximum: float = 3600.0
    jitter: float = 0.1

    def delay(self, attempts: int) -> float:
        """The wait after the given number of failed attempts (1 = first failure)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, attempts - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class JobResult:
    """What one attempt of one job did; `error` is safe to show and log."""

    job_id: str
    target_id: str
    kind: JobKind
    path: str
    event_id: str | None
    ok: bool
    bytes_uploaded: int = 0
    files_uploaded: int = 0
    files_skipped: int = 0
    error: str | None = None
    reason: str | None = None
    will_retry: bool = False
    deleted_local: bool = False
    gave_up: bool = False  # moved to the failed list (retry limit reached)


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """A target's health as last seen: ok, or a problem with a reason code and safe message."""

    ok: bool
    reason: str | None = None
    message: str | None = None
    held: bool = False


@dataclass(eq=False, slots=True)
class _Lane:
    """One target's runner, its running jobs, and what wakes it."""

    spec: TargetSpec
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    workers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    runner: asyncio.Task[None] | None = None
    held: bool = False
    idle: bool = False
    # When the runner looks again by itself: None = only when woken (or it is not asleep).
    sleep_until: float | None = None
    wakeups: int = 0


@dataclass(slots=True)
class _Outcome:
    bytes_uploaded: int = 0
    files_uploaded: int = 0
    files_skipped: int = 0
    verified: tuple[str, ...] = ()


type TaskFactory = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


def _safe_segment(value: str, what: str) -> str:
    if not value or "/" in value or "\\" in value or value in (".", ".."):
        raise ValueError(f"invalid {what} {value!r}")
    return value


def _read_event(event_dir: Path) -> tuple[str | None, set[str]]:
    """The event's label (from event.json) and camera folders (blocking)."""
    if not event_dir.is_dir():
        raise LocalFileMissingError(f"event folder {event_dir.name} is missing")
    record = read_event(event_dir)
    label = record.label if record is not None and record.label else None
    cameras = {entry.name for entry in event_dir.iterdir() if entry.is_dir()}
    return label, cameras


type FileEntry = tuple[Path, str, str]


def _list_event(
    storage: Path, rel: str, cameras: frozenset[str] | None
) -> tuple[list[FileEntry], list[FileEntry]]:
    """An event's (local path, remote name, relative path): its clips, then event.json (blocking)."""
    event_dir = storage / rel
    event_id = event_dir.name
    if not event_dir.is_dir():
        raise LocalFileMissingError(f"event folder {event_id} is missing")
    files: list[FileEntry] = []
    last: list[FileEntry] = []
    for local in sorted(event_dir.rglob("*")):
        if not local.is_file() or local.name.startswith("."):
            continue
        inside = local.relative_to(event_dir)
        if len(inside.parts) > 1 and cameras is not None and inside.parts[0] not in cameras:
            continue
        entry = (local, join_remote(event_id, inside.as_posix()), f"{rel}/{inside.as_posix()}")
        (last if inside.as_posix() == EVENT_FILE else files).append(entry)
    if not files and not last:
        raise LocalFileMissingError(f"event folder {event_id} is empty")
    return files, last


def _delete_local(storage: Path, kind: JobKind, rel: str, files: Iterable[str]) -> bool:
    """Delete verified files, prune empty folders; event.json goes only with the last clip."""
    deleted = False
    keep_event_file = False
    for item in sorted(set(files)):
        path = storage / item
        if kind == "event" and PurePosixPath(item).name == EVENT_FILE:
            keep_event_file = True
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted = True
    root = storage / rel
    if kind == "event" and root.is_dir():
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        remaining = [p for p in root.rglob("*") if p.name != EVENT_FILE]
        if not remaining and keep_event_file:
            (root / EVENT_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                root.rmdir()
            deleted = True
    elif kind == "recording":
        with contextlib.suppress(OSError):
            root.parent.rmdir()
    return deleted


class SyncEngine:
    """Uploads queued events and recordings, each target in its own lane; never blocks the loop."""

    def __init__(
        self,
        storage_path: Path,
        queue: SyncQueue,
        targets: Iterable[TargetSpec] = (),
        *,
        concurrency: int = 2,
        file_concurrency: int = 2,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        run_in_executor: RunInExecutor | None = None,
        clock: Callable[[], float] = time.time,
        on_job_finished: Callable[[JobResult], None] | None = None,
        on_queue_length: Callable[[int], None] | None = None,
        on_target_status: Callable[[str, TargetStatus], None] | None = None,
    ) -> None:
        """`concurrency` is per target: jobs of one target that may run at once."""
        self._storage = Path(storage_path)
        self._queue = queue
        self._lanes: dict[str, _Lane] = {}
        self._status: dict[str, TargetStatus] = {}
        self._concurrency = max(1, concurrency)
        self._file_concurrency = max(1, file_concurrency)
        self._backoff = backoff or Backoff()
        self._max_attempts = max_attempts
        self._run = run_in_executor or default_executor()
        self._clock = clock
        self._on_job_finished = on_job_finished
        self._on_queue_length = on_queue_length
        self._on_target_status = on_target_status
        self._idle = asyncio.Event()
        self._task_factory: TaskFactory | None = None
        self._started = False
        self._finishing: set[str] = set()
        self._last_length = len(queue)
        queue.add_listener(self._queue_changed)
        for spec in targets:
            self._lanes[spec.target_id] = _Lane(spec)
            self._status[spec.target_id] = TargetStatus(ok=True)

    @property
    def queue(self) -> SyncQueue:
        """The queue this engine works."""
        return self._queue

    def target_status(self, target_id: str) -> TargetStatus:
        """The last known status of a target."""
        return self._status.get(target_id, TargetStatus(ok=True))

    def running(self, target_id: str) -> int:
        """How many jobs of a target run now."""
        lane = self._lanes.get(target_id)
        return len(lane.workers) if lane is not None else 0

    def wakeups(self, target_id: str) -> int:
        """How often the target's runner was woken (not counting its own timed looks)."""
        lane = self._lanes.get(target_id)
        return lane.wakeups if lane is not None else 0

    def set_target(self, spec: TargetSpec) -> None:
        """Add or replace a target (new credentials after a reauth) and release any hold on it.

        The caller closes the target object it replaces.
        """
        lane = self._lanes.get(spec.target_id)
        if lane is None:
            lane = self._lanes[spec.target_id] = _Lane(spec)
            if self._started:
                self._start_lane(lane)
        lane.spec = spec
        lane.held = False
        self._set_status(spec.target_id, TargetStatus(ok=True))
        self._wake(lane)

    def hold(self, target_id: str, status: TargetStatus) -> None:
        """Hold a target from the start (it was held when the hub stopped): nothing is tried."""
        if (lane := self._lanes.get(target_id)) is not None:
            lane.held = True
            self._set_status(
                target_id, TargetStatus(status.ok, status.reason, status.message, True)
            )

    def retry_target(self, target_id: str) -> None:
        """Release a held target (after the user fixed it) and try its jobs now."""
        if (lane := self._lanes.get(target_id)) is not None:
            self._release(lane)
            self._wake(lane)

    async def retry_failed(self, target_id: str) -> int:
        """Put the target's failed jobs back in the queue, due now; returns how many."""
        count = await self._queue.requeue_failed(target_id)
        if count and (lane := self._lanes.get(target_id)) is not None:
            self._wake(lane)
        return count

    async def remove_target(self, target_id: str, drop_jobs: bool = True) -> None:
        """Forget a target; its running jobs are cancelled and, by default, its jobs dropped."""
        lane = self._lanes.pop(target_id, None)
        self._status.pop(target_id, None)
        if lane is not None:
            await self._stop_lane(lane)
        if drop_jobs:
            await self._queue.remove_target(target_id)
        self._check_idle()

    async def enqueue_event(self, event_id: str) -> int:
        """Queue a finished event for every target whose filters accept it; returns jobs added."""
        rel = f"{EVENTS_DIR}/{_safe_segment(event_id, 'event id')}"
        label, cameras = await self._run(_read_event, self._storage / rel)
        added = 0
        for lane in list(self._lanes.values()):
            spec = lane.spec
            if not spec.include_events:
                continue
            if spec.labels is not None and label not in spec.labels:
                continue
            if spec.cameras is not None and not cameras & spec.cameras:
                continue
            if await self._queue.add("event", rel, spec.target_id) is not None:
                added += 1
                self._wake(lane)
        return added

    async def enqueue_recording(self, path: str | Path) -> int:
        """Queue a finished recording file (absolute, or relative to storage_path)."""
        rel, _ = self._recording_path(path)
        return await self.enqueue_recordings([rel])

    def _recording_path(self, path: str | Path) -> tuple[str, str]:
        """The recording's path relative to storage_path, and its camera; ValueError if it is
        not a recording."""
        local = Path(path)
        rel_path = local.relative_to(self._storage) if local.is_absolute() else local
        parts = rel_path.parts
        if len(parts) < 3 or parts[0] != RECORDINGS_DIR or ".." in parts:
            raise ValueError(f"not a recording path: {rel_path.as_posix()!r}")
        return rel_path.as_posix(), parts[1]

    async def enqueue_recordings(self, paths: Iterable[str | Path]) -> int:
        """Queue closed recording files for the targets that want them; each target is woken
        at most once for the lot, and a path that is no recording is logged and skipped.
        Returns the jobs added."""
        added = 0
        woken: set[str] = set()
        for path in paths:
            try:
                rel, camera = self._recording_path(path)
            except ValueError as err:
                _LOGGER.warning("Not queued for upload: %s", err)
                continue
            for lane in list(self._lanes.values()):
                spec = lane.spec
                if spec.include_recordings and spec.wants_camera(camera):
                    job = await self._queue.add("recording", rel, spec.target_id)
                    if job is not None:
                        added += 1
                        woken.add(spec.target_id)
        for target_id in woken:
            if (target_lane := self._lanes.get(target_id)) is not None:
                self._wake(target_lane)
        return added

    def start(self, task_factory: TaskFactory | None = None) -> None:
        """Start every lane (HA passes entry.async_create_background_task)."""
        if self._started:
            return
        self._started = True
        self._task_factory = task_factory
        self._idle.clear()
        for lane in self._lanes.values():
            self._start_lane(lane)
        self._check_idle()

    async def sync_now(self) -> None:
        """Try every queued job now: backoffs are skipped and held targets get one more try."""
        await self._queue.retry_all(self._clock())
        for lane in self._lanes.values():
            self._release(lane)
            self._wake(lane)

    async def wait_idle(self) -> None:
        """After start(): return once no job runs and none is due (some may wait or be held)."""
        await self._idle.wait()

    async def stop(self) -> None:
        """Cancel the runners and running uploads, and wait for them; jobs stay queued.

        A job that is already recording its outcome (queue update, local delete) is let finish,
        so the queue, the disk and the callbacks stay consistent.
        """
        self._started = False
        await asyncio.gather(*(self._stop_lane(lane) for lane in list(self._lanes.values())))

    async def close(self) -> None:
        """stop() and close every target."""
        await self.stop()
        for lane in self._lanes.values():
            await lane.spec.target.close()

    # ------------------------------------------------------------------ lanes

    def _start_lane(self, lane: _Lane) -> None:
        coro = self._run_lane(lane)
        name = f"pm_dvr sync {lane.spec.target_id}"
        factory = self._task_factory
        lane.runner = factory(coro) if factory else asyncio.create_task(coro, name=name)

    async def _stop_lane(self, lane: _Lane) -> None:
        tasks = [t for t in (lane.runner, *lane.workers.values()) if t is not None]
        if lane.runner is not None:
            lane.runner.cancel()
        for job_id, task in lane.workers.items():
            if job_id not in self._finishing:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        lane.runner = None
        lane.workers.clear()
        lane.sleep_until = None
        lane.idle = True

    def _release(self, lane: _Lane) -> None:
        """Lift a hold; the problem shows until the next attempt, no longer as held."""
        if lane.held:
            lane.held = False
            status = self.target_status(lane.spec.target_id)
            self._set_status(
                lane.spec.target_id, TargetStatus(status.ok, status.reason, status.message)
            )

    def _wake(self, lane: _Lane) -> None:
        """Wake the lane's runner if it can start a job now; else let it sleep."""
        if lane.held or len(lane.workers) >= self._concurrency:
            return
        due = self._queue.next_due(lane.spec.target_id)
        if due is None:
            return
        if lane.sleep_until is not None and due >= lane.sleep_until:
            return  # it looks by then anyway
        if not lane.wake.is_set():
            lane.wakeups += 1
            lane.wake.set()
        lane.idle = False
        self._idle.clear()

    async def _run_lane(self, lane: _Lane) -> None:
        """Start the target's due jobs, then sleep until one is due or the lane is woken."""
        target_id = lane.spec.target_id
        while True:
            lane.wake.clear()
            now = self._clock()
            while not lane.held and len(lane.workers) < self._concurrency:
                job = self._queue.take_due(target_id, now)
                if job is None:
                    break
                task = asyncio.create_task(
                    self._work(lane, job), name=f"pm_dvr sync job {target_id}"
                )
                lane.workers[job["id"]] = task
            due: float | None = None
            if not lane.held and len(lane.workers) < self._concurrency:
                due = self._queue.next_due(target_id)
            wait = None if due is None else max(0.0, due - now)
            lane.sleep_until = due
            lane.idle = not lane.workers
            self._check_idle()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await lane.wake.wait()
            lane.sleep_until = None

    def _check_idle(self) -> None:
        if all(lane.idle or lane.runner is None for lane in self._lanes.values()):
            self._idle.set()
        else:
            self._idle.clear()

    # ------------------------------------------------------------------ callbacks

    def _queue_changed(self, length: int) -> None:
        if length != self._last_length:
            self._last_length = length
            self._emit(self._on_queue_length, length)

    def _emit(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            _LOGGER.exception("A sync callback failed")

    def _set_status(self, target_id: str, status: TargetStatus) -> None:
        if self._status.get(target_id) != status:
            self._status[target_id] = status
            self._emit(self._on_target_status, target_id, status)

    # ------------------------------------------------------------------ one job

    async def _work(self, lane: _Lane, job: JobView) -> None:
        """Run one attempt of one leased job and record its outcome."""
        job_id: str = job["id"]
        spec = lane.spec
        try:
            try:
                outcome = await self._execute(job, spec)
            except SyncError as err:
                self._finishing.add(job_id)
                await self._failed(lane, job, spec, err)
            except Exception as err:  # a bug or an SDK surprise: retry later, never crash the lane
                self._finishing.add(job_id)
                _LOGGER.warning("Unexpected %s while syncing %s", type(err).__name__, job["path"])
                await self._failed(lane, job, spec, SyncError(f"unexpected {type(err).__name__}"))
            else:
                self._finishing.add(job_id)
                await self._succeeded(job, spec, outcome)
        finally:
            self._finishing.discard(job_id)
            self._queue.release(job_id)  # due again if it still waits (failed, cancelled)
            lane.workers.pop(job_id, None)
            if lane.runner is not None:
                lane.wake.set()  # a slot is free

    async def _execute(self, job: JobView, spec: TargetSpec) -> _Outcome:
        """Upload every file of the job that the target does not already hold verified."""
        rel: str = job["path"]
        if job["kind"] == "event":
            files, last = await self._run(_list_event, self._storage, rel, spec.cameras)
        else:
            local = self._storage / rel
            if not await self._run(local.is_file):
                raise LocalFileMissingError(f"recording {local.name} is missing")
            files, last = [(local, rel, rel)], []
        outcome = _Outcome()
        verified: list[str] = []

        async def send(pending: Iterator[FileEntry]) -> None:
            for local, remote_name, rel_file in pending:
                if await spec.target.exists_verified(local, remote_name):
                    outcome.files_skipped += 1
                else:
                    result = await spec.target.upload(local, remote_name)
                    outcome.files_uploaded += 1
                    outcome.bytes_uploaded += result.size
                verified.append(rel_file)

        pending = iter(files)
        lanes = min(self._file_concurrency, len(files))
        if lanes > 1:
            # Several files at once, taken in order: one file's round trips (existence check,
            # commit, verification) overlap the next one's data; the target bounds its memory.
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(lanes):
                        group.create_task(send(pending))
            except BaseExceptionGroup as group_error:
                raise first_error(group_error) from None
        else:
            await send(pending)
        await send(iter(last))  # event.json alone, after every clip: it means a whole event
        outcome.verified = tuple(verified)
        return outcome

    async def _succeeded(self, job: JobView, spec: TargetSpec, outcome: _Outcome) -> None:
        job_id: str = job["id"]
        if self._queue.get(job_id) is None:  # removed while running
            return
        kind: JobKind = job["kind"]
        path: str = job["path"]
        to_delete = set(job.get("deferred_delete", []))
        if spec.delete_after_upload:
            to_delete.update(outcome.verified)
        siblings = [
            (s["id"], tuple(s.get("deferred_delete", ()))) for s in self._queue.siblings(job_id)
        ]
        await self._queue.remove(job_id)
        deleted = False
        if to_delete and siblings:
            for sibling_id, deferred in siblings:
                merged = sorted(to_delete | set(deferred))
                await self._queue.update(sibling_id, deferred_delete=merged)
        elif to_delete:
            deleted = await self._run(_delete_local, self._storage, kind, path, to_delete)
        self._set_status(spec.target_id, TargetStatus(ok=True))
        _LOGGER.debug(
            "Synced %s to %s: %d bytes, %d files sent, %d already there",
            path,
            spec.target_id,
            outcome.bytes_uploaded,
            outcome.files_uploaded,
            outcome.files_skipped,
        )
        self._emit(
            self._on_job_finished,
            JobResult(
                job_id=job_id,
                target_id=spec.target_id,
                kind=kind,
                path=path,
                event_id=_event_id(job),
                ok=True,
                bytes_uploaded=outcome.bytes_uploaded,
                files_uploaded=outcome.files_uploaded,
                files_skipped=outcome.files_skipped,
                deleted_local=deleted,
            ),
        )

    async def _failed(self, lane: _Lane, job: JobView, spec: TargetSpec, err: SyncError) -> None:
        job_id: str = job["id"]
        kind: JobKind = job["kind"]
        path: str = job["path"]
        message = redact(str(err))
        attempts = int(job.get("attempts", 0)) + 1
        now = self._clock()
        first_failure = job.get("first_failure") or now
        will_retry = True
        gave_up = False
        if isinstance(err, LocalFileMissingError):
            will_retry = False
            await self._queue.remove(job_id)
        elif isinstance(err, _HOLD_ERRORS):
            lane.held = True  # not the job's fault: it keeps its attempts and retry budget
            await self._queue.update(job_id, last_error=message)
        elif (self._max_attempts is not None and attempts >= self._max_attempts) or (
            spec.retry_limit is not None and now - first_failure >= spec.retry_limit
        ):
            will_retry = False
            gave_up = True
            await self._queue.fail(
                job_id, attempts=attempts, last_error=message, first_failure=first_failure
            )
        else:
            await self._queue.update(
                job_id,
                attempts=attempts,
                next_attempt=now + self._backoff.delay(attempts),
                last_error=message,
                first_failure=first_failure,
            )
        if not isinstance(err, LocalFileMissingError):
            self._set_status(
                spec.target_id,
                TargetStatus(ok=False, reason=err.reason, message=message, held=lane.held),
            )
        _LOGGER.warning(
            "Sync of %s to %s failed (attempt %d%s): %s",
            path,
            spec.target_id,
            attempts,
            ", will retry"
            if will_retry
            else ", moved to the failed uploads"
            if gave_up
            else ", giving up",
            message,
        )
        self._emit(
            self._on_job_finished,
            JobResult(
                job_id=job_id,
                target_id=spec.target_id,
                kind=kind,
                path=path,
                event_id=_event_id(job),
                ok=False,
                error=message,
                reason=err.reason,
                will_retry=will_retry,
                gave_up=gave_up,
            ),
        )


def _event_id(job: JobView) -> str | None:
    if job["kind"] != "event":
        return None
    return PurePosixPath(job["path"]).name
