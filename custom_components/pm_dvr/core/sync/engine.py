"""The sync engine: works the queue against the targets, with retries, filters and safe deletes.

Remote layout (below each target's own prefix or path):
    event      `<event_id>/<camera>/<clip>.mp4` ..., then `<event_id>/event.json` last, so a
               remote event.json means the whole event is there
    recording  `recordings/<camera>/<YYYY-MM-DD>/<file>.mp4` (as on disk)

A local file is deleted only after it was verified (size and MD5) on a target that has
`delete_after_upload`, and only when no other target still has a job for the same path: the last
of those jobs performs the deferred delete once it succeeds too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Iterator
import contextlib
from dataclasses import dataclass
import json
import logging
from pathlib import Path, PurePosixPath
import random
import time
from typing import Any

from .base import RunInExecutor, SyncTarget, default_executor, first_error, join_remote
from .errors import (
    LocalFileMissingError,
    RcloneNotInstalledError,
    SyncError,
    TargetAuthError,
    TargetConfigError,
    redact,
)
from .queue import Job, JobKind, SyncQueue

_LOGGER = logging.getLogger(__name__)

EVENT_FILE = "event.json"
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


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """A target's health as last seen: ok, or a problem with a reason code and safe message."""

    ok: bool
    reason: str | None = None
    message: str | None = None
    held: bool = False


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
    label: str | None = None
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((event_dir / EVENT_FILE).read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("label"), str):
            label = data["label"]
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
    """Uploads queued events and recordings with bounded concurrency; never blocks the loop."""

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
        self._storage = Path(storage_path)
        self._queue = queue
        self._targets: dict[str, TargetSpec] = {}
        self._status: dict[str, TargetStatus] = {}
        self._held: set[str] = set()
        self._concurrency = max(1, concurrency)
        self._file_concurrency = max(1, file_concurrency)
        self._backoff = backoff or Backoff()
        self._max_attempts = max_attempts
        self._run = run_in_executor or default_executor()
        self._clock = clock
        self._on_job_finished = on_job_finished
        self._on_queue_length = on_queue_length
        self._on_target_status = on_target_status
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._finishing: set[str] = set()
        self._last_length = len(queue)
        queue.add_listener(self._queue_changed)
        for spec in targets:
            self._targets[spec.target_id] = spec
            self._status[spec.target_id] = TargetStatus(ok=True)

    @property
    def queue(self) -> SyncQueue:
        """The queue this engine works."""
        return self._queue

    def target_status(self, target_id: str) -> TargetStatus:
        """The last known status of a target."""
        return self._status.get(target_id, TargetStatus(ok=True))

    def set_target(self, spec: TargetSpec) -> None:
        """Add or replace a target (new credentials after a reauth) and release any hold on it.

        The caller closes the target object it replaces.
        """
        self._targets[spec.target_id] = spec
        self._held.discard(spec.target_id)
        self._set_status(spec.target_id, TargetStatus(ok=True))
        self._kick()

    def retry_target(self, target_id: str) -> None:
        """Release a held target (after the user fixed it) and try its jobs now."""
        self._held.discard(target_id)
        self._kick()

    async def remove_target(self, target_id: str, drop_jobs: bool = True) -> None:
        """Forget a target; its running job is cancelled and, by default, its jobs dropped."""
        self._targets.pop(target_id, None)
        self._held.discard(target_id)
        self._status.pop(target_id, None)
        for job_id, task in list(self._workers.items()):
            job = self._queue.get(job_id)
            if job is not None and job["target"] == target_id:
                if job_id not in self._finishing:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if drop_jobs:
            await self._queue.remove_target(target_id)
        self._kick()

    async def enqueue_event(self, event_id: str) -> int:
        """Queue a finished event for every target whose filters accept it; returns jobs added."""
        rel = f"{EVENTS_DIR}/{_safe_segment(event_id, 'event id')}"
        label, cameras = await self._run(_read_event, self._storage / rel)
        added = 0
        for spec in self._targets.values():
            if not spec.include_events:
                continue
            if spec.labels is not None and label not in spec.labels:
                continue
            if spec.cameras is not None and not cameras & spec.cameras:
                continue
            if await self._queue.add("event", rel, spec.target_id) is not None:
                added += 1
        self._kick()
        return added

    async def enqueue_recording(self, path: str | Path) -> int:
        """Queue a finished recording file (absolute, or relative to storage_path)."""
        local = Path(path)
        rel_path = local.relative_to(self._storage) if local.is_absolute() else local
        parts = rel_path.parts
        if len(parts) < 3 or parts[0] != RECORDINGS_DIR or ".." in parts:
            raise ValueError(f"not a recording path: {rel_path.as_posix()!r}")
        camera = parts[1]
        added = 0
        for spec in self._targets.values():
            if spec.include_recordings and spec.wants_camera(camera):
                job = await self._queue.add("recording", rel_path.as_posix(), spec.target_id)
                added += job is not None
        self._kick()
        return added

    def start(self, task_factory: TaskFactory | None = None) -> None:
        """Start working the queue (HA passes entry.async_create_background_task)."""
        if self._runner is not None:
            return
        self._idle.clear()
        coro = self._run_loop()
        self._runner = task_factory(coro) if task_factory else asyncio.create_task(coro)

    async def sync_now(self) -> None:
        """Try every queued job now: backoffs are skipped and held targets get one more try."""
        await self._queue.retry_all(self._clock())
        self._held.clear()
        self._kick()

    async def wait_idle(self) -> None:
        """After start(): return once no job runs and none is due (some may wait or be held)."""
        await self._idle.wait()

    async def stop(self) -> None:
        """Cancel the runner and running uploads; jobs stay queued for the next start.

        A job that is already recording its outcome (queue update, local delete) is let finish,
        so the queue, the disk and the callbacks stay consistent.
        """
        tasks = [t for t in (self._runner, *self._workers.values()) if t is not None]
        for job_id, task in [(None, self._runner), *self._workers.items()]:
            if task is not None and job_id not in self._finishing:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None
        self._workers.clear()

    async def close(self) -> None:
        """stop() and close every target."""
        await self.stop()
        for spec in self._targets.values():
            await spec.target.close()

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

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

    async def _run_loop(self) -> None:
        """Launch due jobs, then sleep until a job ends, something is queued, or a backoff ends."""
        while True:
            self._wake.clear()
            self._launch_due()
            wait = self._next_wait()
            if not self._workers and (wait is None or wait > 0):
                self._idle.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _runnable(self, job: Job) -> bool:
        return (
            job["id"] not in self._workers
            and job["target"] in self._targets
            and job["target"] not in self._held
        )

    def _launch_due(self) -> None:
        """Start due jobs of usable targets, up to the concurrency limit."""
        for job in self._queue.due(self._clock()):
            if len(self._workers) >= self._concurrency:
                return
            if self._runnable(job):
                task = asyncio.create_task(self._work(job["id"]), name="pm_dvr sync job")
                self._workers[job["id"]] = task

    def _next_wait(self) -> float | None:
        """Seconds until the next runnable job is due; None to wait for a wake-up only."""
        next_attempt = self._queue.next_attempt(self._runnable)
        if next_attempt is None:
            return None
        wait = next_attempt - self._clock()
        if wait <= 0:
            return None if len(self._workers) >= self._concurrency else 0.0
        return wait

    async def _work(self, job_id: str) -> None:
        """Run one attempt of one job and record its outcome."""
        try:
            job = self._queue.get(job_id)
            spec = self._targets.get(job["target"]) if job else None
            if job is None or spec is None:
                return
            try:
                outcome = await self._execute(job, spec)
            except SyncError as err:
                self._finishing.add(job_id)
                await self._failed(job, spec, err)
            except Exception as err:  # a bug or an SDK surprise: retry later, never crash the loop
                self._finishing.add(job_id)
                _LOGGER.warning("Unexpected %s while syncing %s", type(err).__name__, job["path"])
                await self._failed(job, spec, SyncError(f"unexpected {type(err).__name__}"))
            else:
                self._finishing.add(job_id)
                await self._succeeded(job_id, spec, outcome)
        finally:
            self._finishing.discard(job_id)
            self._workers.pop(job_id, None)
            self._wake.set()

    async def _execute(self, job: Job, spec: TargetSpec) -> _Outcome:
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

    async def _succeeded(self, job_id: str, spec: TargetSpec, outcome: _Outcome) -> None:
        job = self._queue.get(job_id)
        if job is None:  # removed while running
            return
        to_delete = set(job.get("deferred_delete", []))
        if spec.delete_after_upload:
            to_delete.update(outcome.verified)
        siblings = self._queue.siblings(job_id)
        await self._queue.remove(job_id)
        deleted = False
        if to_delete and siblings:
            for sibling in siblings:
                merged = sorted(to_delete | set(sibling.get("deferred_delete", [])))
                await self._queue.update(sibling["id"], deferred_delete=merged)
        elif to_delete:
            deleted = await self._run(
                _delete_local, self._storage, job["kind"], job["path"], to_delete
            )
        self._set_status(spec.target_id, TargetStatus(ok=True))
        _LOGGER.debug(
            "Synced %s to %s: %d bytes, %d files sent, %d already there",
            job["path"],
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
                kind=job["kind"],
                path=job["path"],
                event_id=_event_id(job),
                ok=True,
                bytes_uploaded=outcome.bytes_uploaded,
                files_uploaded=outcome.files_uploaded,
                files_skipped=outcome.files_skipped,
                deleted_local=deleted,
            ),
        )

    async def _failed(self, job: Job, spec: TargetSpec, err: SyncError) -> None:
        message = redact(str(err))
        attempts = int(job.get("attempts", 0)) + 1
        will_retry = True
        if isinstance(err, LocalFileMissingError):
            will_retry = False
            await self._queue.remove(job["id"])
        elif isinstance(err, _HOLD_ERRORS):
            self._held.add(spec.target_id)
            await self._queue.update(job["id"], last_error=message)
        elif self._max_attempts is not None and attempts >= self._max_attempts:
            will_retry = False
            await self._queue.remove(job["id"])
        else:
            await self._queue.update(
                job["id"],
                attempts=attempts,
                next_attempt=self._clock() + self._backoff.delay(attempts),
                last_error=message,
            )
        if not isinstance(err, LocalFileMissingError):
            self._set_status(
                spec.target_id,
                TargetStatus(
                    ok=False,
                    reason=err.reason,
                    message=message,
                    held=spec.target_id in self._held,
                ),
            )
        _LOGGER.warning(
            "Sync of %s to %s failed (attempt %d%s): %s",
            job["path"],
            spec.target_id,
            attempts,
            ", will retry" if will_retry else ", giving up",
            message,
        )
        self._emit(
            self._on_job_finished,
            JobResult(
                job_id=job["id"],
                target_id=spec.target_id,
                kind=job["kind"],
                path=job["path"],
                event_id=_event_id(job),
                ok=False,
                error=message,
                reason=err.reason,
                will_retry=will_retry,
            ),
        )


def _event_id(job: Job) -> str | None:
    if job["kind"] != "event":
        return None
    return PurePosixPath(job["path"]).name
