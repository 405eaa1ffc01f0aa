"""pm_dvr: a dependable DVR for RTSP cameras, inside Home Assistant."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
import homeassistant.helpers.config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType

from . import websocket_api
from .card import async_register_card
from .const import (
    CONF_SEGMENT_SECONDS,
    CONF_STORAGE_PATH,
    CONF_STREAM_URL,
    DEFAULT_SEGMENT_SECONDS,
    DOMAIN,
    ENTRY_VERSION,
    EVENT_PM_DVR,
    LOGGER,
    MOTION_LIVE_KEYS,
    SUBENTRY_CAMERA,
    signal_event,
)
from .coordinator import CameraCoordinator, HubCoordinator
from .core.capture import CaptureManager, EventInfo
from .core.clips import ClipIndex
from .core.layout import ensure_storage, index_dir, recordings_dir
from .core.recorder import recover_partials
from .core.urls import strip_credentials
from .data import PmDvrConfigEntry, PmDvrData
from .devices import async_migrate_devices
from .errors import translate_errors
from .events import motion_event_listener
from .issues import async_setup_repairs
from .media_source import PmDvrMediaView
from .mqtt import async_setup_mqtt
from .retention import async_apply_retention_options, async_setup_retention
from .services import async_setup_services
from .sync import async_setup_sync, queue_path
from .views import PmDvrLiveView

CAPTURE_STORE_VERSION = 1

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CAMERA,
    Platform.IMAGE,
    Platform.NUMBER,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services, the WebSocket commands, the live view and the media view (once,
    whatever the number of hubs; exports are served without HA's media browser too)."""
    async_setup_services(hass)
    websocket_api.async_setup(hass)
    hass.http.register_view(PmDvrLiveView(hass))
    hass.http.register_view(PmDvrMediaView(hass))
    await async_register_card(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: PmDvrConfigEntry) -> bool:
    """Bring an entry saved by an older pm_dvr up to date (a newer major version is refused)."""
    if entry.version > ENTRY_VERSION:
        return False
    if entry.minor_version < 2:
        _migrate_camera_ids(hass, entry)
        hass.config_entries.async_update_entry(entry, minor_version=2)
    return True


def _migrate_camera_ids(hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
    """1.2: a camera's unique id is its URL without any login (userinfo, `password=` and the
    like in the query), no longer with the query's secrets; entity and device ids are built from
    the subentry's id, so they and the history stay. A camera whose new id another camera holds
    already (one stream reached with two logins) keeps no id."""
    migrated = 0
    for subentry in list(entry.subentries.values()):
        if subentry.subentry_type != SUBENTRY_CAMERA:
            continue
        unique_id: str | None = strip_credentials(subentry.data[CONF_STREAM_URL])
        if unique_id == subentry.unique_id:
            continue
        if any(
            other.unique_id == unique_id
            for other in entry.subentries.values()
            if other.subentry_id != subentry.subentry_id
        ):
            unique_id = None
        hass.config_entries.async_update_subentry(entry, subentry, unique_id=unique_id)
        migrated += 1
    if migrated:
        LOGGER.info("Removed the login from the unique ids of %d camera(s)", migrated)


async def async_setup_entry(hass: HomeAssistant, entry: PmDvrConfigEntry) -> bool:
    """Prepare storage, index existing clips, start every camera and its entities."""
    storage = Path(entry.data[CONF_STORAGE_PATH])
    with translate_errors("setup"):
        await hass.async_add_executor_job(ensure_storage, storage)
    index = ClipIndex(recordings_dir(storage), blocks_dir=index_dir(storage))
    # Clips left open by a crash or power cut are finalised and kept, before the index is built.
    await hass.async_add_executor_job(_recover_and_scan, storage, index)
    entry.runtime_data = PmDvrData(
        storage=storage,
        index=index,
        settings_snapshot=(dict(entry.data), dict(entry.options)),
    )
    hub = entry.runtime_data.hub = HubCoordinator(hass, entry)
    entry.async_on_unload(index.add_listener(hub.on_clip_added))
    await async_setup_retention(hass, entry)
    await _async_start_capture(hass, entry)
    await async_setup_sync(hass, entry)
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_CAMERA:
            _add_camera(hass, entry, subentry.subentry_id)

    async def _async_on_stop(event: Event) -> None:
        await _async_stop_cameras(entry)

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_on_stop))
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    async_migrate_devices(hass, entry)
    # The switches restore their last state as they are added, so the cameras start after them:
    # a camera whose Recording switch was off never opens a clip.
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    for coordinator in entry.runtime_data.cameras.values():
        await coordinator.async_start()
    async_setup_mqtt(hass, entry)
    entry.async_on_unload(async_setup_repairs(hass, entry))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PmDvrConfigEntry) -> bool:
    """Unload platforms, then stop every camera (threads joined, clips closed)."""
    unload_ok = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unload_ok:
        await _async_stop_cameras(entry)
        if entry.runtime_data.capture is not None:
            await entry.runtime_data.capture.stop()
        if entry.runtime_data.sync is not None:
            await entry.runtime_data.sync.async_stop()
    return unload_ok


async def async_remove_entry(hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
    """A hub deleted: its upload queue file goes too."""
    await hass.async_add_executor_job(queue_path(hass, entry.entry_id).unlink, True)


async def _async_start_capture(hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
    """Events: state kept in a Store so events in progress survive a restart."""
    store: Store[dict[str, Any]] = Store(
        hass, CAPTURE_STORE_VERSION, f"{DOMAIN}.{entry.entry_id}.events"
    )

    async def save(state: dict[str, Any]) -> None:
        await store.async_save(state)

    def announce(event: EventInfo) -> None:
        hass.bus.async_fire(EVENT_PM_DVR, event.as_dict())
        async_dispatcher_send(hass, signal_event(entry.entry_id), event)

    segment = entry.options.get(CONF_SEGMENT_SECONDS, DEFAULT_SEGMENT_SECONDS)
    capture = CaptureManager(
        entry.runtime_data.storage,
        entry.runtime_data.index,
        save_state=save,
        on_event=announce,
        cameras=lambda: {camera.slug for camera in entry.runtime_data.cameras.values()},
        grace_seconds=float(segment) * 2 + 10,
    )
    await capture.start(await store.async_load())
    entry.runtime_data.capture = capture


def _recover_and_scan(storage: Path, index: ClipIndex) -> None:
    recovered = recover_partials(storage, index.folders_to_scan())
    if recovered:
        LOGGER.warning("Recovered %d clip(s) left open by an unclean stop", len(recovered))
    index.scan()


def _add_camera(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    subentry_id: str,
    *,
    recording_enabled: bool = True,
    motion_enabled: bool = True,
) -> CameraCoordinator:
    """A camera's coordinator, not started yet (see CameraCoordinator.async_start)."""
    coordinator = CameraCoordinator(
        hass,
        entry,
        entry.subentries[subentry_id],
        recording_enabled=recording_enabled,
        motion_enabled=motion_enabled,
    )
    entry.runtime_data.cameras[subentry_id] = coordinator
    coordinator.motion_listeners.append(motion_event_listener(entry, coordinator))
    return coordinator


async def _async_stop_cameras(entry: PmDvrConfigEntry) -> None:
    cameras = entry.runtime_data.cameras
    while cameras:
        _, coordinator = cameras.popitem()
        await coordinator.async_stop()


async def _async_update_listener(hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
    """Apply a change: hub settings reload the entry; camera changes touch only that camera.

    Adding or removing a camera must not interrupt the recording of the others.
    """
    data = entry.runtime_data
    if (dict(entry.data), dict(entry.options)) != data.settings_snapshot:
        if not async_apply_retention_options(entry):
            hass.config_entries.async_schedule_reload(entry.entry_id)
        return
    wanted = {
        subentry_id: subentry
        for subentry_id, subentry in entry.subentries.items()
        if subentry.subentry_type == SUBENTRY_CAMERA
    }
    # A camera rebuilt for new settings keeps what its switches were set to.
    switches: dict[str, tuple[bool, bool]] = {}
    for subentry_id in list(data.cameras):
        subentry = wanted.get(subentry_id)
        coordinator = data.cameras[subentry_id]
        if subentry is not None and subentry.title == coordinator.title:
            if subentry.data == coordinator.settings:
                continue
            if _only_live_changes(subentry.data, coordinator.settings):
                coordinator.async_apply_motion_settings(subentry.data)
                continue
        del data.cameras[subentry_id]
        switches[subentry_id] = (
            coordinator.recorder is None or coordinator.recorder.enabled,
            coordinator.motion_sink is None or coordinator.motion_enabled,
        )
        for entity in list(coordinator.entities):
            await entity.async_remove()
        await coordinator.async_stop()
    for subentry_id in wanted.keys() - data.cameras.keys():
        recording, motion = switches.get(subentry_id, (True, True))
        coordinator = _add_camera(
            hass, entry, subentry_id, recording_enabled=recording, motion_enabled=motion
        )
        for add_entities in data.entity_factories.values():
            add_entities(coordinator)
        await coordinator.async_start()
    if data.sync is not None:
        await data.sync.async_apply_targets()


def _only_live_changes(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether only motion tuning changed (applied live: recording is not interrupted)."""
    changed = {key for key in new.keys() | old.keys() if new.get(key) != old.get(key)}
    return changed <= MOTION_LIVE_KEYS
