"""Retention in Home Assistant: the hub's core `Retention`, run by one worker task per hub.

The worker serialises every run, event refresh and clean-up, so runs never overlap, and does all
file work in the executor. It runs every minute, as soon as a closing clip takes a limit over, and
when an event changes. Two repair issues follow the free-space floor: events deleted to keep the
disk from filling (cleared once free space is back above the floor), and low disk space that
deleting recordings and unkept events cannot fix (cleared once it is fixed); recording carries on
into what is left meanwhile. The core logs each condition when it starts and changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
import contextlib
from dataclasses import dataclass
import functools
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import (
    CONF_MAX_AGE_DAYS,
    CONF_MAX_EVENT_AGE_DAYS,
    CONF_MAX_EVENT_STORAGE_GB,
    CONF_MAX_STORAGE_GB,
    CONF_MIN_FREE_GB,
    DEFAULT_MAX_AGE_DAYS,
    DEFAULT_MAX_EVENT_AGE_DAYS,
    DOMAIN,
    EVENT_QUOTA_SHARE,
    ISSUE_EVENTS_DELETED,
    ISSUE_LOW_DISK_SPACE,
    LOGGER,
    RETENTION_KEYS,
    signal_event,
)
from .core.capture import EventInfo
from .core.retention import (
    BYTES_PER_GB,
    Retention,
    RetentionConfig,
    RetentionResult,
    RetentionUsage,
)

if TYPE_CHECKING:
    from .data import PmDvrConfigEntry

ENFORCE_INTERVAL = 60.0  # seconds between runs when nothing asks for one sooner


def default_event_quota_gb(max_storage_gb: float) -> float:
    """The event quota when none is set: a share of the recordings quota, in steps of 0.1 GB."""
    if max_storage_gb <= 0:
        return 0.0  # recordings unlimited: so are events (the free-space floor still holds)
    return max(0.1, round(max_storage_gb * EVENT_QUOTA_SHARE, 1))


def event_quota_gb(options: Mapping[str, Any]) -> float:
    """The event quota in force: the option, or (absent or None) its share of the storage quota.

    Entries saved before the option existed, and any left empty in the form, get the share.
    """
    value = options.get(CONF_MAX_EVENT_STORAGE_GB)
    if value is None:
        return default_event_quota_gb(float(options.get(CONF_MAX_STORAGE_GB, 0)))
    return float(value)


def retention_config(options: Mapping[str, Any]) -> RetentionConfig:
    """The hub options as core limits (options saved before an option existed use its default)."""
    min_free = options.get(CONF_MIN_FREE_GB)
    return RetentionConfig(
        max_storage_gb=float(options.get(CONF_MAX_STORAGE_GB, 0)),
        max_age_days=float(options.get(CONF_MAX_AGE_DAYS, DEFAULT_MAX_AGE_DAYS)),
        max_event_storage_gb=event_quota_gb(options),
        max_event_age_days=float(options.get(CONF_MAX_EVENT_AGE_DAYS, DEFAULT_MAX_EVENT_AGE_DAYS)),
        min_free_gb=None if min_free is None else float(min_free),
    )


def format_gb(n_bytes: float) -> str:
    """Bytes as the GB the options use (1024**3), for repair texts."""
    return f"{n_bytes / BYTES_PER_GB:.2f} GB"


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: RetentionResult
    usage: RetentionUsage


class RetentionManager:
    """Owns the hub's `Retention`: loads it, runs it, and publishes its figures."""

    def __init__(self, hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        data = entry.runtime_data
        self.retention = Retention(
            data.storage,
            data.index,
            retention_config(entry.options),
            on_over_quota=self._request_threadsafe,
        )
        self.usage: RetentionUsage | None = None
        self.last_result: RetentionResult | None = None
        self.runs = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pending_events: set[str] = set()
        self._bitrate_bps = 0.0
        self._issue_id = f"{ISSUE_LOW_DISK_SPACE}_{entry.entry_id}"
        self._issue_raised = False
        self._events_issue_id = f"{ISSUE_EVENTS_DELETED}_{entry.entry_id}"
        self._run_failure: str | None = None  # the last run's failure, logged once
        # Events deleted for space since free space was last above the floor: how many, the last.
        self._events_deleted = 0
        self._last_event_deleted = ""

    async def async_start(self) -> None:
        """Account for what is on disk (after the index scan), then start the worker."""
        self.entry.async_on_unload(self._async_on_unload)
        # Every event change the capture manager announces (start, clips linked, completion).
        self.entry.async_on_unload(
            async_dispatcher_connect(
                self.hass, signal_event(self.entry.entry_id), self.async_event_changed
            )
        )
        await self.hass.async_add_executor_job(self.retention.load)
        self.usage = await self.hass.async_add_executor_job(self.retention.usage)
        if (hub := self.entry.runtime_data.hub) is not None:
            hub.async_refresh_status()
        self._wake.set()  # a first run right away: limits may have changed while HA was down
        self.entry.async_create_background_task(
            self.hass, self._async_worker(), f"{DOMAIN} retention {self.entry.entry_id}"
        )

    async def _async_on_unload(self) -> None:
        # The issues describe a running hub; nothing would clear them once the hub is unloaded.
        ir.async_delete_issue(self.hass, DOMAIN, self._issue_id)
        ir.async_delete_issue(self.hass, DOMAIN, self._events_issue_id)
        # Its lock may be held by a run finishing in its thread: not on the event loop.
        await self.hass.async_add_executor_job(self.retention.close)

    def _request_threadsafe(self) -> None:
        """Called from recorder threads when a closing clip takes a limit over."""
        loop = self.hass.loop
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    @callback
    def async_event_changed(self, event: EventInfo) -> None:
        """An event started, linked clips or completed: account for it on the next run."""
        self.async_refresh_event(event.event_id)

    @callback
    def async_refresh_event(self, event_id: str) -> None:
        """Re-read one event folder on the next run (for code that changes or deletes events,
        such as sync removing uploaded events): a folder that is gone is forgotten."""
        self._pending_events.add(event_id)
        self._wake.set()

    @callback
    def async_set_options(self, options: Mapping[str, Any]) -> None:
        """New limits from the options flow, applied on a run right away."""
        self.retention.set_config(retention_config(options))
        self._wake.set()

    async def async_cleanup(self, target_gb: float | None = None) -> RetentionResult:
        """Run retention now (the service and the button); `target_gb` shrinks once more."""
        return await self._async_run(cleanup=True, target_gb=target_gb)

    async def _async_worker(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ENFORCE_INTERVAL):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._async_run()
            except Exception as err:  # the worker must outlive any one bad run
                # Once per distinct failure, not every minute it repeats.
                failure = f"{type(err).__name__}: {err}"
                if failure != self._run_failure:
                    LOGGER.exception("Retention run failed")
                else:
                    LOGGER.debug("Retention run failed again: %s", failure)
                self._run_failure = failure
            else:
                if self._run_failure is not None:
                    LOGGER.info("Retention runs again")
                self._run_failure = None

    async def _async_run(
        self, *, cleanup: bool = False, target_gb: float | None = None
    ) -> RetentionResult:
        async with self._lock:
            events = self._pending_events | self._active_events()
            self._pending_events = set()
            self._bitrate_bps = self._current_bitrate()
            job = functools.partial(
                self._run_blocking, events, self._bitrate_bps, cleanup, target_gb
            )
            future = self.hass.async_add_executor_job(job)
            try:
                outcome = await asyncio.shield(future)
            except asyncio.CancelledError:
                # Unloading: the run finishes in its thread before the entry is gone.
                with contextlib.suppress(Exception):
                    await future
                raise
        self._publish(outcome)
        return outcome.result

    def _run_blocking(
        self, events: Iterable[str], bitrate_bps: float, cleanup: bool, target_gb: float | None
    ) -> _Outcome:
        for event_id in events:
            self.retention.refresh_event(event_id)
        if cleanup:
            result = self.retention.cleanup(target_gb, bitrate_bps)
        else:
            result = self.retention.enforce(bitrate_bps)
        return _Outcome(result, self.retention.usage())

    def _active_events(self) -> set[str]:
        """Events still recording link clips between announcements: re-read them every run."""
        capture = self.entry.runtime_data.capture
        return {event.event_id for event in capture.active_events()} if capture else set()

    def _current_bitrate(self) -> float:
        """Total recording bitrate now (bits/s), for the automatic free-space floor."""
        kbps = sum(
            camera.data.bitrate_kbps or 0
            for camera in self.entry.runtime_data.cameras.values()
            if camera.recorder is not None
        )
        return kbps * 1000

    @callback
    def _publish(self, outcome: _Outcome) -> None:
        self.runs += 1
        self.usage = outcome.usage
        self.last_result = outcome.result
        self._update_issue(outcome)
        self._update_events_issue(outcome)
        if (hub := self.entry.runtime_data.hub) is not None:
            hub.async_refresh_status()

    def _update_issue(self, outcome: _Outcome) -> None:
        low = outcome.result.low_space_unresolved
        if low:
            floor = outcome.usage.free_floor_bytes or 0
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self._issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_LOW_DISK_SPACE,
                translation_placeholders={
                    "storage": str(self.entry.runtime_data.storage),
                    "free": format_gb(outcome.usage.free_bytes or 0),
                    "floor": format_gb(floor),
                    "events": format_gb(outcome.usage.events_bytes),
                },
            )
        elif self._issue_raised:
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id)
        self._issue_raised = low

    def _update_events_issue(self, outcome: _Outcome) -> None:
        """Events deleted for space: said until free space is back above the floor."""
        result = outcome.result
        if result.emergency_events:
            self._events_deleted += len(result.emergency_events)
            self._last_event_deleted = result.emergency_events[-1]
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self._events_issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_EVENTS_DELETED,
                translation_placeholders={
                    "storage": str(self.entry.runtime_data.storage),
                    "count": str(self._events_deleted),
                    "last": self._last_event_deleted,
                    "floor": format_gb(outcome.usage.free_floor_bytes or 0),
                },
            )
        elif self._events_deleted and not result.low_space:
            self._events_deleted = 0
            ir.async_delete_issue(self.hass, DOMAIN, self._events_issue_id)


async def async_setup_retention(hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
    """Give the hub its retention (call after the index scan, before cameras start)."""
    manager = RetentionManager(hass, entry)
    entry.runtime_data.retention = manager
    await manager.async_start()


@callback
def async_apply_retention_options(entry: PmDvrConfigEntry) -> bool:
    """Apply an options change live if it touches only retention limits; False otherwise.

    Limits need no restart: the cameras keep recording and the next run applies them.
    """
    data = entry.runtime_data
    old_data, old_options = data.settings_snapshot
    options = dict(entry.options)
    changed = {
        key
        for key in options.keys() | old_options.keys()
        if options.get(key) != old_options.get(key)
    }
    if data.retention is None or dict(entry.data) != old_data or not changed <= RETENTION_KEYS:
        return False
    data.retention.async_set_options(options)
    data.settings_snapshot = (old_data, options)
    return True
