"""The persistent upload queue: plain-JSON items, persistence injected by the caller.

The core cannot use Home Assistant's Store, so the glue passes a `save` callable (for example one
that calls `Store.async_delay_save`); `JsonFileStore` is a small stand-in for tests and benchmarks.

One item (a dict, JSON-safe):
    {"id": "<hex>", "kind": "event" | "recording",
     "path": "events/<event_id>" | "recordings/<camera>/<YYYY-MM-DD>/<file>.mp4",
     "target": "<target id>", "attempts": 0, "next_attempt": <epoch seconds>,
     "last_error": None | "<non-secret text>", "added": <epoch seconds>,
     "deferred_delete": ["<relative file path>", ...]   # optional, see SyncEngine
    }
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
import copy
import inspect
import json
import logging
import os
from pathlib import Path
import time
from typing import Any, Literal
import uuid

from .base import RunInExecutor, default_executor

_LOGGER = logging.getLogger(__name__)

type JobKind = Literal["event", "recording"]
type Job = dict[str, Any]
type SaveCallback = Callable[[list[Job]], Awaitable[None] | None]

KINDS: tuple[JobKind, ...] = ("event", "recording")


def _valid(item: Mapping[str, Any]) -> bool:
    return (
        isinstance(item.get("id"), str)
        and item.get("kind") in KINDS
        and isinstance(item.get("path"), str)
        and isinstance(item.get("target"), str)
    )


class SyncQueue:
    """Jobs (one per path and target) kept in order and saved after every change."""

    def __init__(
        self,
        initial: Iterable[Mapping[str, Any]] | None = None,
        save: SaveCallback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._save = save
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self._listeners: list[Callable[[int], None]] = []
        for item in initial or ():
            if not _valid(item):
                _LOGGER.warning("Dropping a malformed sync queue item")
                continue
            job: Job = {
                "attempts": 0,
                "next_attempt": 0.0,
                "last_error": None,
                "added": 0.0,
                **copy.deepcopy(dict(item)),
            }
            self._jobs[job["id"]] = job

    def __len__(self) -> int:
        return len(self._jobs)

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call listener(length) after every change."""
        self._listeners.append(listener)

    def jobs(self) -> list[Job]:
        """Copies of all jobs, oldest first."""
        return [copy.deepcopy(job) for job in self._jobs.values()]

    def get(self, job_id: str) -> Job | None:
        """A copy of one job, or None."""
        job = self._jobs.get(job_id)
        return copy.deepcopy(job) if job is not None else None

    def find(self, kind: JobKind, path: str, target: str) -> Job | None:
        """The queued job for this path and target, if any."""
        for job in self._jobs.values():
            if job["kind"] == kind and job["path"] == path and job["target"] == target:
                return copy.deepcopy(job)
        return None

    def siblings(self, job_id: str) -> list[Job]:
        """Other queued jobs for the same local path (other targets)."""
        job = self._jobs[job_id]
        return [
            copy.deepcopy(other)
            for other in self._jobs.values()
            if other["id"] != job_id
            and other["kind"] == job["kind"]
            and other["path"] == job["path"]
        ]

    def due(self, now: float) -> list[Job]:
        """Copies of the jobs whose next attempt has come, earliest first."""
        ready = [job for job in self._jobs.values() if job["next_attempt"] <= now]
        ready.sort(key=lambda job: (job["next_attempt"], job["added"]))
        return [copy.deepcopy(job) for job in ready]

    def next_attempt(self, where: Callable[[Job], bool] | None = None) -> float | None:
        """The earliest next_attempt of the jobs that pass `where` (all jobs by default)."""
        return min(
            (j["next_attempt"] for j in self._jobs.values() if where is None or where(j)),
            default=None,
        )

    async def add(self, kind: JobKind, path: str, target: str) -> Job | None:
        """Queue a job; None when the same path is already queued for that target."""
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        if self.find(kind, path, target) is not None:
            return None
        now = self._clock()
        job: Job = {
            "id": uuid.uuid4().hex,
            "kind": kind,
            "path": path,
            "target": target,
            "attempts": 0,
            "next_attempt": now,
            "last_error": None,
            "added": now,
        }
        self._jobs[job["id"]] = job
        await self._changed()
        return copy.deepcopy(job)

    async def update(self, job_id: str, **changes: Any) -> None:
        """Change fields of a queued job (ignored when it is gone)."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.update(copy.deepcopy(changes))
        await self._changed()

    async def retry_all(self, now: float) -> None:
        """Make every job due at `now` (a manual "sync now"), with one save."""
        changed = False
        for job in self._jobs.values():
            if job["next_attempt"] > now:
                job["next_attempt"] = now
                changed = True
        if changed:
            await self._changed()

    async def remove(self, job_id: str) -> Job | None:
        """Take a job out of the queue; returns it, or None if it was not there."""
        job = self._jobs.pop(job_id, None)
        if job is not None:
            await self._changed()
        return job

    async def remove_target(self, target: str) -> int:
        """Drop every job of a target (the target was deleted); returns how many."""
        gone = [job_id for job_id, job in self._jobs.items() if job["target"] == target]
        for job_id in gone:
            del self._jobs[job_id]
        if gone:
            await self._changed()
        return len(gone)

    async def _changed(self) -> None:
        if self._save is not None:
            result = self._save(self.jobs())
            if inspect.isawaitable(result):
                await result
        for listener in self._listeners:
            listener(len(self._jobs))


class JsonFileStore:
    """Keeps the queue in one JSON file, replaced atomically (for tests, bench and tools)."""

    def __init__(self, path: Path, run_in_executor: RunInExecutor | None = None) -> None:
        self.path = Path(path)
        self._run = run_in_executor or default_executor()
        self._lock = asyncio.Lock()

    def load(self) -> list[Job]:
        """Read the items; an absent or unreadable file is an empty queue (blocking)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            _LOGGER.warning("Sync queue file %s is unreadable; starting empty", self.path)
            return []
        items = data.get("items") if isinstance(data, dict) else None
        return [item for item in items or [] if isinstance(item, dict)]

    async def async_load(self) -> list[Job]:
        """load() in a worker thread."""
        return await self._run(self.load)

    async def save(self, items: list[Job]) -> None:
        """Write the items in a worker thread, one write at a time so the last call wins."""
        async with self._lock:
            await self._run(self._write, items)

    def _write(self, items: list[Job]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.tmp")
        with temp.open("w", encoding="utf-8") as handle:
            json.dump({"version": 1, "items": items}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(self.path)
