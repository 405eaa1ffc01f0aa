"""Repair issues for a camera unreachable for 30 minutes and for an unusable storage folder.

Each clears itself as soon as the cause is gone (checked every minute). Not named repairs.py:
that name is HA's platform for fix flows, which these issues do not need (repairs.py holds the
fix flows of the sync issues raised in sync.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
import os
from pathlib import Path

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_time_interval

from .const import DOMAIN
from .core.layout import recordings_dir
from .data import PmDvrConfigEntry
from .diagnostics import scrub_text

CHECK_INTERVAL = timedelta(minutes=1)
UNREACHABLE_AFTER = timedelta(minutes=30)
ISSUE_CAMERA = "camera_unreachable"


class StorageProblem(StrEnum):
    """Why the storage folder cannot be used (each its own translated issue)."""

    MISSING = "storage_missing"
    READ_ONLY = "storage_read_only"


def storage_problem(storage: Path) -> StorageProblem | None:
    """What is wrong with the storage folder, None when it is usable. Blocking.

    Never creates the folder: a missing mount point must not fill the system disk instead.
    """
    if not storage.is_dir() or not recordings_dir(storage).is_dir():
        return StorageProblem.MISSING
    try:
        read_only = bool(os.statvfs(storage).f_flag & os.ST_RDONLY)
    except OSError:  # pragma: no cover - removed between the two checks
        return StorageProblem.MISSING
    if read_only or not os.access(storage, os.W_OK | os.X_OK):
        return StorageProblem.READ_ONLY
    return None


def camera_issue_id(subentry_id: str) -> str:
    """The issue of one camera (its subentry), so each camera's issue comes and goes alone."""
    return f"{ISSUE_CAMERA}_{subentry_id}"


def storage_issue_id(entry_id: str) -> str:
    """The storage issue of one hub."""
    return f"storage_{entry_id}"


class RepairsMonitor:
    """Watches a hub's cameras and storage and keeps its issues in step with them."""

    def __init__(self, hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
        """Nothing runs until `async_start`."""
        self.hass = hass
        self.entry = entry
        self._timers: dict[str, Callable[[], None]] = {}
        self._raised: set[str] = set()
        self._storage_issue: StorageProblem | None = None
        self._stopped = False

    @callback
    def async_start(self) -> Callable[[], None]:
        """Check now and every minute; returns the stop function for `entry.async_on_unload`."""
        unsub = async_track_time_interval(
            self.hass, self._async_tick, CHECK_INTERVAL, cancel_on_shutdown=True
        )
        self._async_tick()

        @callback
        def stop() -> None:
            self._stopped = True
            unsub()
            for cancel in self._timers.values():
                cancel()
            self._timers.clear()
            for issue_id in {camera_issue_id(s) for s in self._raised}:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            self._raised.clear()
            ir.async_delete_issue(self.hass, DOMAIN, storage_issue_id(self.entry.entry_id))

        return stop

    @callback
    def _async_tick(self, _now: datetime | None = None) -> None:
        self._check_cameras()
        self.entry.async_create_task(
            self.hass, self._async_check_storage(), f"{DOMAIN} storage check"
        )

    async def _async_check_storage(self) -> None:
        problem = await self.hass.async_add_executor_job(
            storage_problem, self.entry.runtime_data.storage
        )
        if not self._stopped:
            self._set_storage_issue(problem)

    @callback
    def _check_cameras(self) -> None:
        cameras = self.entry.runtime_data.cameras
        for subentry_id in [s for s in (*self._timers, *self._raised) if s not in cameras]:
            self._clear_camera(subentry_id)  # camera removed
        for subentry_id, coordinator in cameras.items():
            if coordinator.session.available:
                self._clear_camera(subentry_id)
            elif subentry_id not in self._timers and subentry_id not in self._raised:
                self._timers[subentry_id] = async_call_later(
                    self.hass, UNREACHABLE_AFTER, partial(self._raise_camera, subentry_id)
                )

    @callback
    def _raise_camera(self, subentry_id: str, _now: datetime) -> None:
        self._timers.pop(subentry_id, None)
        coordinator = self.entry.runtime_data.cameras.get(subentry_id)
        if self._stopped or coordinator is None or coordinator.session.available:
            return
        self._raised.add(subentry_id)
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            camera_issue_id(subentry_id),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_CAMERA,
            translation_placeholders={
                "camera": coordinator.title,
                "minutes": str(int(UNREACHABLE_AFTER.total_seconds() // 60)),
                "error": scrub_text(coordinator.session.stats.last_error or "no answer"),
            },
        )

    @callback
    def _clear_camera(self, subentry_id: str) -> None:
        if cancel := self._timers.pop(subentry_id, None):
            cancel()
        if subentry_id in self._raised:
            self._raised.discard(subentry_id)
            ir.async_delete_issue(self.hass, DOMAIN, camera_issue_id(subentry_id))

    @callback
    def _set_storage_issue(self, problem: StorageProblem | None) -> None:
        if problem == self._storage_issue:
            return
        self._storage_issue = problem
        issue_id = storage_issue_id(self.entry.entry_id)
        if problem is None:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.CRITICAL,
            translation_key=problem.value,
            translation_placeholders={"path": str(self.entry.runtime_data.storage)},
        )


@callback
def async_setup_repairs(hass: HomeAssistant, entry: PmDvrConfigEntry) -> Callable[[], None]:
    """Start the hub's repairs monitor; returns what stops it (and removes its issues)."""
    return RepairsMonitor(hass, entry).async_start()
