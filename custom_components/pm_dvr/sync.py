"""The sync coordinator: owns the hub's upload queue and engine, and the targets' state in HA.

Targets are the hub's `target` subentries. The queue lives in a Store (so it survives restarts);
the engine (core/sync) uploads with bounded concurrency and retries, off the event loop. Completed
events are queued when the capture manager announces them (the hub's event dispatcher signal, with
state `complete`); recordings are queued as clips close, for targets that want them.

A target whose login fails (Azure refusing the key or SAS) is held by the engine and gets a reauth
flow on the hub (subentries have no reauth of their own); a target that keeps failing for an hour
gets a repair issue that clears itself once an upload succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
import shutil
import time
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import Store
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
    CONF_TARGET_TYPE,
    CONF_UPLOAD,
    DOMAIN,
    EVENT_PM_DVR_UPLOAD,
    LOGGER,
    SUBENTRY_TARGET,
    TARGET_AZURE,
    TARGET_FOLDER,
    UPLOAD_ALL,
    signal_event,
)
from .core.capture import STATE_COMPLETE, EventInfo
from .core.clips import Clip
from .core.sync import (
    AzureBlobConfig,
    AzureTuning,
    Backoff,
    FolderConfig,
    FolderTarget,
    JobResult,
    RcloneConfig,
    RcloneTarget,
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

RCLONE_BINARY = "rclone"
STORE_VERSION = 1
SAVE_DELAY = 1.0
# A target failing this long (seconds) gets a repair issue.
FAILING_ISSUE_AFTER = 3600.0
BACKOFF = Backoff()
# The engine retries with its own backoff (30 s doubling to 1 h, shown on the entities), so the
# SDK only retries a request twice, briefly, to ride out a blip without restarting the file.
AZURE_TUNING = AzureTuning(retry_total=2, retry_backoff=2.0)
# Names the target in the hub's reauth flow (entry.async_start_reauth's data).
REAUTH_TARGET = "target_subentry_id"
ISSUE_TARGET_FAILING = "target_failing"
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
            azure_config(data), async_get_clientsession(hass), run, AZURE_TUNING
        )
    if kind == TARGET_FOLDER:
        return FolderTarget(FolderConfig(Path(data[CONF_PATH])), run)
    binary = await hass.async_add_executor_job(rclone_binary)
    return RcloneTarget(
        RcloneConfig(
            remote=data[CONF_REMOTE],
            rclone_binary=binary or RCLONE_BINARY,
            config_file=data.get(CONF_RCLONE_CONFIG) or None,
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
    )


def issue_id(target_id: str) -> str:
    """The repair issue of a failing target."""
    return f"{ISSUE_TARGET_FAILING}_{target_id}"


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
        self._queue: SyncQueue | None = None
        self._engine: SyncEngine | None = None
        self._targets: dict[str, _Target] = {}
        self._problems: dict[str, TargetStatus] = {}
        self._last_upload: float | None = None
        self._failing_since: dict[str, float] = {}
        self._issue_timers: dict[str, CALLBACK_TYPE] = {}
        self._wants_recordings = False
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
        self._queue = SyncQueue(stored.get("items") or [], self._save_later)
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
        for job in self._queue.jobs():
            if job["target"] not in self._targets:
                await self._queue.remove_target(job["target"])
        self._update_wants_recordings()
        self._engine.start(
            lambda coro: entry.async_create_background_task(self.hass, coro, f"{DOMAIN} sync")
        )
        entry.async_on_unload(
            async_dispatcher_connect(self.hass, signal_event(entry.entry_id), self._on_event)
        )
        entry.async_on_unload(entry.runtime_data.index.add_listener(self._on_clip))
        self.async_set_updated_data(self._status())

    async def async_stop(self) -> None:
        """Stop uploads (jobs stay queued), close the targets and save the queue now."""
        for cancel in self._issue_timers.values():
            cancel()
        self._issue_timers.clear()
        if self._engine is not None:
            await self._engine.close()
        await self._store.async_save(self._snapshot())

    async def async_sync_now(self) -> None:
        """Retry every queued job now (skipping backoffs, retrying held targets)."""
        await self.engine.sync_now()

    async def async_enqueue_event(self, event_id: str) -> int:
        """Queue a completed event for every target whose filters accept it."""
        try:
            return await self.engine.enqueue_event(event_id)
        except (SyncError, ValueError) as err:
            LOGGER.warning("Cannot queue event %s for upload: %s", event_id, err)
            return 0

    async def async_apply_targets(self) -> None:
        """Follow the hub's target subentries: start added ones, rebuild changed, drop removed."""
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
            target = await self._async_build(wanted[target_id])
            if target.spec is not None:
                self.engine.set_target(target.spec)
            for add_entities in self.target_entity_factories.values():
                add_entities(target_id)
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
        if not keep_jobs:
            self._clear_failing(target_id)

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
        return {
            "items": self._queue.jobs() if self._queue is not None else [],
            "last_upload": self._last_upload,
            "failing_since": dict(self._failing_since),
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
        """Called from recorder threads when a clip closes."""
        if self._wants_recordings:
            self.hass.loop.call_soon_threadsafe(self._enqueue_recording, clip.path)

    @callback
    def _enqueue_recording(self, path: Path) -> None:
        if self._engine is not None:
            self.config_entry.async_create_task(
                self.hass, self.engine.enqueue_recording(path), f"{DOMAIN} sync enqueue"
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
        else:
            if target_id not in self._failing_since:
                self._failing_since[target_id] = time.time()
                self._save_later()
            self._schedule_issue(target_id)
            self._reauth_if_refused(target_id, status)
        self.async_set_updated_data(self._status())

    def _reauth_if_refused(self, target_id: str, status: TargetStatus) -> None:
        """Open the hub's reauth flow for an Azure target whose credentials were refused.

        HA runs one reauth flow per entry at a time: another refused target gets its turn when
        the targets change (see async_apply_targets).
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
