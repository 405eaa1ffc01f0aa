"""The sync coordinator: owns the hub's upload queue and engine, and the targets' state in HA.

Targets are the hub's `target` subentries. The queue lives in an SQLite file in HA's `.storage`
(a row per job, changes written in batches off the loop, so it survives restarts and crashes);
the engine (core/sync) uploads each target in its own lane with retries, off the event loop.
Completed events are queued when the capture manager announces them (the hub's event dispatcher
signal, with state `complete`); recordings are queued as clips close, for targets that want them,
in batches (clips closing together wake each target once).

Every target operation has a timeout (TIMEOUT, 60 s without an answer or progress), so a hung
target shows a problem within a minute or two. A target whose login fails is held by the engine
until the user acts: an Azure target gets a reauth flow on the hub (subentries have no reauth of
their own), any other held target (rclone login, rclone missing) a fixable repair issue that
tries again; the hold is kept across restarts. A target whose settings cannot work (it cannot
even be built) gets a repair issue pointing at Reconfigure. A target that keeps failing for an hour gets a repair
issue that clears itself once an upload succeeds. A job still failing after the target's retry
limit (days) moves to the failed uploads, and a fixable repair issue offers to retry them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
import shutil
import sqlite3
import threading
import time
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import (
    EVENT_HOMEASSISTANT_FINAL_WRITE,
    EVENT_HOMEASSISTANT_STOP,
    Platform,
)
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import STORAGE_DIR, Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .const import (
    CONF_ACCOUNT_URL,
    CONF_CAMERAS,
    CONF_CONNECTION_STRING,
    CONF_CONTAINER,
    CONF_CREDENTIAL,
    CONF_DELETE_AFTER_UPLOAD,
    CONF_LABELS,
    CONF_PATH,
    CONF_PREFIX,
    CONF_RCLONE_CONFIG,
    CONF_REMOTE,
    CONF_RETRY_DAYS,
    CONF_TARGET_TYPE,
    CONF_UPLOAD,
    DEFAULT_RETRY_DAYS,
    DOMAIN,
    EVENT_PM_DVR_UPLOAD,
    LOGGER,
    SUBENTRY_TARGET,
    TARGET_AZURE,
    TARGET_FOLDER,
    UPLOAD_ALL,
    signal_event,
)
from .core.capture import EventInfo
from .core.clips import Clip
from .core.event import STATE_COMPLETE
from .core.sync import (
    DEFAULT_TIMEOUT,
    AzureBlobConfig,
    AzureTuning,
    Backoff,
    FolderConfig,
    FolderTarget,
    JobResult,
    RcloneConfig,
    RcloneTarget,
    SqliteQueueStore,
    SyncEngine,
    SyncError,
    SyncQueue,
    SyncTarget,
    TargetAuthError,
    TargetSpec,
    TargetStatus,
    create_azure_target,
)
from .data import PmDvrConfigEntry
from .errors import translate_errors

RCLONE_BINARY = "rclone"
STORE_VERSION = 1
SAVE_DELAY = 1.0
# A target failing this long (seconds) gets a repair issue.
FAILING_ISSUE_AFTER = 3600.0
BACKOFF = Backoff()
# The engine retries with its own backoff (30 s doubling to 1 h, shown on the entities), so the
# SDK only retries a request twice, briefly, to ride out a blip without restarting the file.
AZURE_TUNING = AzureTuning(retry_total=2, retry_backoff=2.0)
# Seconds any target operation may go without an answer (or, for a transfer, without progress).
TIMEOUT = DEFAULT_TIMEOUT
DAY = 86400.0
# Names the target in the hub's reauth flow (entry.async_start_reauth's data).
REAUTH_TARGET = "target_subentry_id"
ISSUE_TARGET_FAILING = "target_failing"
ISSUE_FAILED_UPLOADS = "failed_uploads"
ISSUE_TARGET_HELD = "target_held"
ISSUE_TARGET_INVALID = "target_invalid"
# The data a fixable issue carries to its repair flow (see repairs.py).
ISSUE_ENTRY = "entry_id"
ISSUE_TARGET = "target_id"
RESULT_SUCCESS = "success"
RESULT_FAILED = "failed"


def rclone_binary() -> str | None:
    """The rclone executable's full path, None when it is not installed (blocking)."""
    return shutil.which(RCLONE_BINARY)


def azure_config(data: Mapping[str, Any]) -> AzureBlobConfig:
    """The core's Azure settings from a target subentry's data."""
    return AzureBlobConfig(
        connection_string=data.get(CONF_CONNECTION_STRING) or None,
        account_url=data.get(CONF_ACCOUNT_URL) or None,
        credential=data.get(CONF_CREDENTIAL) or None,
        container=data[CONF_CONTAINER],
        prefix=data.get(CONF_PREFIX) or "",
    )


async def async_create_target(hass: HomeAssistant, data: Mapping[str, Any]) -> SyncTarget:
    """The transport for a target subentry (the Azure client is built in the executor)."""
    run = hass.async_add_executor_job
    kind = data[CONF_TARGET_TYPE]
    if kind == TARGET_AZURE:
        return await create_azure_target(
            azure_config(data),
            async_get_clientsession(hass),
            run,
            replace(AZURE_TUNING, request_timeout=TIMEOUT),
        )
    if kind == TARGET_FOLDER:
        return FolderTarget(FolderConfig(Path(data[CONF_PATH])), run, timeout=TIMEOUT)
    binary = await hass.async_add_executor_job(rclone_binary)
    return RcloneTarget(
        RcloneConfig(
            remote=data[CONF_REMOTE],
            rclone_binary=binary or RCLONE_BINARY,
            config_file=data.get(CONF_RCLONE_CONFIG) or None,
            command_timeout=TIMEOUT,
            stall_timeout=TIMEOUT,
        ),
        run,
    )


def target_spec(target_id: str, target: SyncTarget, data: Mapping[str, Any]) -> TargetSpec:
    """What the engine sends to a target, from the subentry's options (empty filter = all)."""
    return TargetSpec(
        target_id=target_id,
        target=target,
        delete_after_upload=bool(data.get(CONF_DELETE_AFTER_UPLOAD, False)),
        include_events=True,
        include_recordings=data.get(CONF_UPLOAD) == UPLOAD_ALL,
        cameras=frozenset(data.get(CONF_CAMERAS) or ()) or None,
        labels=frozenset(data.get(CONF_LABELS) or ()) or None,
        retry_limit=retry_days(data) * DAY,
    )


def retry_days(data: Mapping[str, Any]) -> int:
    """Days a target's job may keep failing before it moves to the failed uploads."""
    return int(data.get(CONF_RETRY_DAYS) or DEFAULT_RETRY_DAYS)


def issue_id(target_id: str) -> str:
    """The repair issue of a failing target."""
    return f"{ISSUE_TARGET_FAILING}_{target_id}"


def failed_issue_id(target_id: str) -> str:
    """The repair issue of a target's failed uploads."""
    return f"{ISSUE_FAILED_UPLOADS}_{target_id}"


def held_issue_id(target_id: str) -> str:
    """The repair issue of a held target that has no reauth flow."""
    return f"{ISSUE_TARGET_HELD}_{target_id}"


def invalid_issue_id(target_id: str) -> str:
    """The repair issue of a target whose settings cannot work (it could not be built)."""
    return f"{ISSUE_TARGET_INVALID}_{target_id}"


def queue_path(hass: HomeAssistant, entry_id: str) -> Path:
    """The hub's queue file, in HA's .storage next to its other state."""
    return Path(hass.config.path(STORAGE_DIR, f"{DOMAIN}.{entry_id}.sync_queue.db"))


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """What the sync entities show."""

    queue_length: int
    last_upload: datetime | None
    targets: Mapping[str, TargetStatus]


@dataclass(slots=True)
class _Target:
    """A running target and the subentry it was built from (to see what a change touched)."""

    title: str
    data: Mapping[str, Any]
    spec: TargetSpec | None


class SyncCoordinator(DataUpdateCoordinator[SyncStatus]):
    """Owns the queue (in a Store) and the engine; pushes queue and target state to entities."""

    config_entry: PmDvrConfigEntry

    def __init__(self, hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} sync", update_interval=None
        )
        self._storage = entry.runtime_data.storage
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, f"{DOMAIN}.{entry.entry_id}.sync"
        )
        self._queue_store = SqliteQueueStore(queue_path(hass, entry.entry_id))
        self._queue: SyncQueue | None = None
        self._engine: SyncEngine | None = None
        self._targets: dict[str, _Target] = {}
        self._problems: dict[str, TargetStatus] = {}
        self._last_upload: float | None = None
        self._failing_since: dict[str, float] = {}
        # Held targets (refused login and the like): kept across restarts, so a refused target
        # is not tried again until the user acts.
        self._held: dict[str, dict[str, str | None]] = {}
        self._issue_timers: dict[str, CALLBACK_TYPE] = {}
        self._wants_recordings = False
        self._stopped = False
        self._apply_lock = asyncio.Lock()
        # Clips closed by recorder threads, queued for upload in one batch per loop turn.
        self._clips: list[Path] = []
        self._clips_lock = threading.Lock()
        self._clips_scheduled = False
        # Per platform: adds a target's entities (targets added live); and the entities added.
        self.target_entity_factories: dict[Platform, Callable[[str], None]] = {}
        self.target_entities: dict[str, list[Entity]] = {}
        self.data = self._status()

    @property
    def engine(self) -> SyncEngine:
        """The running engine."""
        assert self._engine is not None
        return self._engine

    def target_ids(self) -> list[str]:
        """The targets, in the order of the hub's subentries."""
        return list(self._targets)

    def target_title(self, target_id: str) -> str:
        """A target's name (its subentry title, which never holds a secret)."""
        return self._targets[target_id].title

    async def async_start(self) -> None:
        """Load the queue, build every target, start the engine and listen for new footage."""
        entry = self.config_entry
        stored = await self._store.async_load() or {}
        self._last_upload = stored.get("last_upload")
        self._failing_since = dict(stored.get("failing_since") or {})
        self._held = dict(stored.get("held") or {})
        run = self.hass.async_add_executor_job
        try:
            self._queue = await SyncQueue.open(self._queue_store, run_in_executor=run)
        except (OSError, sqlite3.Error) as err:  # the hub must still record: queue in memory
            LOGGER.error(
                "Cannot open the sync queue %s (%s): uploads are queued in memory only, "
                "and those still queued when HA stops are lost",
                self._queue_store.path,
                err,
            )
            self._queue = SyncQueue(run_in_executor=run)
        if legacy := stored.get("items"):  # an earlier pm_dvr kept the jobs in the Store
            await self._queue.import_items(legacy)
            await self._queue.flush()
            await self._store.async_save(self._snapshot())
        specs: list[TargetSpec] = []
        for subentry in entry.subentries.values():
            if subentry.subentry_type == SUBENTRY_TARGET:
                target = await self._async_build(subentry)
                if target.spec is not None:
                    specs.append(target.spec)
        self._engine = SyncEngine(
            self._storage,
            self._queue,
            specs,
            backoff=BACKOFF,
            run_in_executor=self.hass.async_add_executor_job,
            on_job_finished=self._job_finished,
            on_queue_length=self._queue_changed,
            on_target_status=self._target_status,
        )
        # Jobs of targets removed while the hub was not running can never run.
        for target_id in self._queue.targets() - self._targets.keys():
            await self._queue.remove_target(target_id)
        for target_id in list(self._held):
            held_target = self._targets.get(target_id)
            if held_target is None or held_target.spec is None:
                del self._held[target_id]
                continue
            held = self._held[target_id]
            self._engine.hold(
                target_id,
                TargetStatus(ok=False, reason=held.get("reason"), message=held.get("message")),
            )
        for target_id in self._targets:
            self._update_failed_issue(target_id)
        self._update_wants_recordings()
        self._engine.start(
            lambda coro: entry.async_create_background_task(self.hass, coro, f"{DOMAIN} sync")
        )
        entry.async_on_unload(
            async_dispatcher_connect(self.hass, signal_event(entry.entry_id), self._on_event)
        )
        entry.async_on_unload(entry.runtime_data.index.add_listener(self._on_clip))
        entry.async_on_unload(self._listen_for_stop())
        self.async_set_updated_data(self._status())

    def _listen_for_stop(self) -> CALLBACK_TYPE:
        """Stop uploads when HA stops, before it closes its HTTP session; write what was
        queued after that (events completed as the cameras stop) at HA's final write.
        Returns what unlistens."""
        stop_fired = final_write_fired = False

        async def on_stop(_event: Event) -> None:
            nonlocal stop_fired
            stop_fired = True
            await self.async_stop()

        async def on_final_write(_event: Event) -> None:
            nonlocal final_write_fired
            final_write_fired = True
            if self._queue is not None:
                await self._queue.close()

        bus = self.hass.bus
        remove_stop = bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, on_stop)
        remove_final_write = bus.async_listen_once(EVENT_HOMEASSISTANT_FINAL_WRITE, on_final_write)

        @callback
        def unlisten() -> None:
            if not stop_fired:
                remove_stop()
            if not final_write_fired:
                remove_final_write()

        return unlisten

    async def async_stop(self) -> None:
        """Stop uploads and wait for them (jobs stay queued), close the targets, save the queue.

        Runs when HA stops (before it closes the HTTP session the Azure targets use) and on
        unload; the second call finds nothing left to do.
        """
        if self._stopped:
            return
        self._stopped = True
        for cancel in self._issue_timers.values():
            cancel()
        self._issue_timers.clear()
        if self._engine is not None:
            await self._engine.close()
        if self._queue is not None:
            await self._queue.close()
        await self._store.async_save(self._snapshot())

    async def async_sync_now(self) -> None:
        """Retry every queued job now (skipping backoffs, retrying held targets)."""
        await self.engine.sync_now()
        for target_id in list(self._held):
            self._release_held(target_id)

    async def async_retry_failed(self, target_id: str) -> int:
        """Put a target's failed uploads back in the queue (the repair flow's fix)."""
        count = await self.engine.retry_failed(target_id)
        self._update_failed_issue(target_id)
        self.async_set_updated_data(self._status())
        return count

    @callback
    def async_release_hold(self, target_id: str) -> None:
        """Let a held target try again (the repair flow's fix)."""
        self._release_held(target_id)
        self.engine.retry_target(target_id)

    def failed_count(self, target_id: str) -> int:
        """How many of a target's uploads are on the failed list."""
        return self._queue.failed_count(target_id) if self._queue is not None else 0

    async def async_enqueue_event(self, event_id: str) -> int:
        """Queue a completed event for every target whose filters accept it."""
        try:
            return await self.engine.enqueue_event(event_id)
        except (SyncError, ValueError) as err:
            LOGGER.warning("Cannot queue event %s for upload: %s", event_id, err)
            return 0

    async def async_apply_targets(self) -> None:
        """Follow the hub's target subentries: start added ones, rebuild changed, drop removed.

        One change at a time: two subentries removed back to back run two update listeners,
        and the second must see what the first did.
        """
        async with self._apply_lock:
            await self._async_apply_targets()

    async def _async_apply_targets(self) -> None:
        wanted = {
            subentry_id: subentry
            for subentry_id, subentry in self.config_entry.subentries.items()
            if subentry.subentry_type == SUBENTRY_TARGET
        }
        for target_id in list(self._targets):
            subentry = wanted.get(target_id)
            current = self._targets[target_id]
            if (
                subentry is not None
                and subentry.data == current.data
                and subentry.title == current.title
            ):
                continue
            await self._async_drop(target_id, keep_jobs=subentry is not None)
        for target_id in wanted.keys() - self._targets.keys():
            if target_id not in self.config_entry.subentries:  # removed meanwhile: next round
                continue
            target = await self._async_build(wanted[target_id])
            if target.spec is not None:
                self.engine.set_target(target.spec)
            for add_entities in self.target_entity_factories.values():
                add_entities(target_id)
            self._update_failed_issue(target_id)
        self._update_wants_recordings()
        status = self._status()
        self._offer_reauth(status)
        self.async_set_updated_data(status)

    @callback
    def async_offer_reauth(self, done: str | None = None) -> None:
        """Ask for the credentials of a refused Azure target, other than the one just `done`."""
        self._offer_reauth(self._status(), done)

    def _offer_reauth(self, status: SyncStatus, done: str | None = None) -> None:
        for target_id, target_status in status.targets.items():
            if target_id != done:
                self._reauth_if_refused(target_id, target_status)

    @translate_errors("update")
    async def _async_update_data(self) -> SyncStatus:
        return self._status()

    async def _async_build(self, subentry: ConfigSubentry) -> _Target:
        """Build a subentry's transport; a target that cannot be built shows as a problem."""
        spec: TargetSpec | None = None
        try:
            transport = await async_create_target(self.hass, subentry.data)
        except SyncError as err:
            LOGGER.warning("Sync target %s cannot be used: %s", subentry.title, err)
            self._problems[subentry.subentry_id] = TargetStatus(
                ok=False, reason=err.reason, message=str(err), held=True
            )
            ir.async_create_issue(  # only new settings can help: no retry to offer
                self.hass,
                DOMAIN,
                invalid_issue_id(subentry.subentry_id),
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_TARGET_INVALID,
                translation_placeholders={"target": subentry.title, "error": str(err)},
            )
        else:
            spec = target_spec(subentry.subentry_id, transport, subentry.data)
        target = _Target(title=subentry.title, data=subentry.data, spec=spec)
        self._targets[subentry.subentry_id] = target
        return target

    async def _async_drop(self, target_id: str, *, keep_jobs: bool) -> None:
        """Stop a target (its running upload is cancelled) and remove its entities."""
        target = self._targets.pop(target_id)
        self._problems.pop(target_id, None)
        await self.engine.remove_target(target_id, drop_jobs=not keep_jobs)
        if target.spec is not None:
            await target.spec.target.close()
        for entity in self.target_entities.pop(target_id, []):
            await entity.async_remove()
        self._release_held(target_id)  # new settings (or no target): try again
        ir.async_delete_issue(self.hass, DOMAIN, invalid_issue_id(target_id))
        if not keep_jobs:
            self._clear_failing(target_id)
            ir.async_delete_issue(self.hass, DOMAIN, failed_issue_id(target_id))

    def _update_wants_recordings(self) -> None:
        self._wants_recordings = any(
            target.spec is not None and target.spec.include_recordings
            for target in self._targets.values()
        )

    def _status(self) -> SyncStatus:
        targets: dict[str, TargetStatus] = {}
        for target_id, target in self._targets.items():
            if target.spec is None or self._engine is None:
                targets[target_id] = self._problems.get(target_id, TargetStatus(ok=True))
            else:
                targets[target_id] = self._engine.target_status(target_id)
        last = self._last_upload
        return SyncStatus(
            queue_length=len(self._queue) if self._queue is not None else 0,
            last_upload=dt_util.utc_from_timestamp(last) if last is not None else None,
            targets=MappingProxyType(targets),
        )

    def _snapshot(self) -> dict[str, Any]:
        """What the Store keeps (the jobs themselves are in the queue's own file)."""
        return {
            "last_upload": self._last_upload,
            "failing_since": dict(self._failing_since),
            "held": dict(self._held),
        }

    def _save_later(self, jobs: object = None) -> None:
        self._store.async_delay_save(self._snapshot, SAVE_DELAY)

    @callback
    def _on_event(self, info: EventInfo) -> None:
        """An event of this hub started or changed: queue it once it is complete."""
        if info.state == STATE_COMPLETE:
            self.config_entry.async_create_task(
                self.hass, self.async_enqueue_event(info.event_id), f"{DOMAIN} sync enqueue"
            )

    def _on_clip(self, clip: Clip) -> None:
        """Called from recorder threads when a clip closes: batched, one hop to the loop."""
        if not self._wants_recordings:
            return
        with self._clips_lock:
            self._clips.append(clip.path)
            if self._clips_scheduled:
                return
            self._clips_scheduled = True
        self.hass.loop.call_soon_threadsafe(self._enqueue_clips)

    @callback
    def _enqueue_clips(self) -> None:
        """Queue every clip closed since the last turn, in one batch."""
        with self._clips_lock:
            paths, self._clips = self._clips, []
            self._clips_scheduled = False
        if self._engine is not None and not self._stopped:
            self.config_entry.async_create_task(
                self.hass, self.engine.enqueue_recordings(paths), f"{DOMAIN} sync enqueue"
            )

    @callback
    def _queue_changed(self, length: int) -> None:
        self.async_set_updated_data(self._status())

    @callback
    def _job_finished(self, result: JobResult) -> None:
        """Remember the last success; announce each finished event on the bus."""
        if result.ok:
            self._last_upload = time.time()
            self._save_later()
        if result.gave_up:
            self._update_failed_issue(result.target_id)
        retention = self.config_entry.runtime_data.retention
        if result.deleted_local and result.event_id and retention is not None:
            retention.async_refresh_event(result.event_id)  # its footage no longer counts
        if result.kind == "event" and (result.ok or not result.will_retry):
            target = self._targets.get(result.target_id)
            self.hass.bus.async_fire(
                EVENT_PM_DVR_UPLOAD,
                {
                    "target": target.title if target else None,
                    "target_id": result.target_id,
                    "event_id": result.event_id,
                    "bytes": result.bytes_uploaded,
                    "files": result.files_uploaded + result.files_skipped,
                    "result": RESULT_SUCCESS if result.ok else RESULT_FAILED,
                    "error": result.error,
                    "deleted_local": result.deleted_local,
                },
            )
        self.async_set_updated_data(self._status())

    @callback
    def _target_status(self, target_id: str, status: TargetStatus) -> None:
        """Track failures for the repair issue; a refused Azure login asks for new credentials."""
        if status.ok:
            self._clear_failing(target_id)
            self._release_held(target_id)
        else:
            if target_id not in self._failing_since:
                self._failing_since[target_id] = time.time()
                self._save_later()
            self._schedule_issue(target_id)
            if status.held:
                self._hold(target_id, status)
        self.async_set_updated_data(self._status())

    def _hold(self, target_id: str, status: TargetStatus) -> None:
        """Keep the hold across restarts; ask the user: reauth for Azure, else a repair issue."""
        held = {"reason": status.reason, "message": status.message}
        if self._held.get(target_id) != held:
            self._held[target_id] = held
            self._save_later()
        if not self._reauth_if_refused(target_id, status):
            target = self._targets.get(target_id)
            self._held_issue(target_id, target.title if target else target_id, status)

    def _held_issue(self, target_id: str, title: str, status: TargetStatus) -> None:
        """A fixable issue for a held target without a reauth flow: its fix tries again."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            held_issue_id(target_id),
            is_fixable=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_TARGET_HELD,
            translation_placeholders={
                "target": title,
                "error": status.message or status.reason or "unknown",
            },
            data={ISSUE_ENTRY: self.config_entry.entry_id, ISSUE_TARGET: target_id},
        )

    def _release_held(self, target_id: str) -> None:
        if self._held.pop(target_id, None) is not None:
            self._save_later()
        ir.async_delete_issue(self.hass, DOMAIN, held_issue_id(target_id))

    def _update_failed_issue(self, target_id: str) -> None:
        """Show the target's failed uploads as a fixable issue (retry them), or clear it."""
        target = self._targets.get(target_id)
        count = self.failed_count(target_id)
        if not count or target is None:
            ir.async_delete_issue(self.hass, DOMAIN, failed_issue_id(target_id))
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            failed_issue_id(target_id),
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_FAILED_UPLOADS,
            translation_placeholders={
                "target": target.title,
                "count": str(count),
                "days": str(retry_days(target.data)),
            },
            data={ISSUE_ENTRY: self.config_entry.entry_id, ISSUE_TARGET: target_id},
        )

    def _reauth_if_refused(self, target_id: str, status: TargetStatus) -> bool:
        """Open the hub's reauth flow for an Azure target whose credentials were refused.

        HA runs one reauth flow per entry at a time: another refused target gets its turn when
        the targets change (see async_apply_targets). Returns whether the target has one.
        """
        target = self._targets.get(target_id)
        if (
            status.reason == TargetAuthError.reason
            and target is not None
            and target.data.get(CONF_TARGET_TYPE) == TARGET_AZURE
        ):
            self.config_entry.async_start_reauth(
                self.hass,
                context={"title_placeholders": {"name": target.title}},
                data={REAUTH_TARGET: target_id},
            )
            return True
        return False

    def _schedule_issue(self, target_id: str) -> None:
        if target_id in self._issue_timers:
            return
        due = self._failing_since[target_id] + FAILING_ISSUE_AFTER - time.time()
        self._issue_timers[target_id] = async_call_later(
            self.hass, max(0.0, due), partial(self._issue_due, target_id)
        )

    @callback
    def _issue_due(self, target_id: str, _now: datetime) -> None:
        """Still failing after the grace period: raise the repair issue."""
        self._issue_timers.pop(target_id, None)
        target = self._targets.get(target_id)
        if target is None or self._engine is None:
            return
        status = self._status().targets[target_id]
        if status.ok:
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id(target_id),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_TARGET_FAILING,
            translation_placeholders={
                "target": target.title,
                "error": status.message or status.reason or "unknown",
            },
        )

    def _clear_failing(self, target_id: str) -> None:
        if self._failing_since.pop(target_id, None) is not None:
            self._save_later()
        if cancel := self._issue_timers.pop(target_id, None):
            cancel()
        ir.async_delete_issue(self.hass, DOMAIN, issue_id(target_id))


async def async_setup_sync(hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
    """Create and start the hub's sync coordinator (also when it has no target yet)."""
    coordinator = SyncCoordinator(hass, entry)
    await coordinator.async_start()
    entry.runtime_data.sync = coordinator
