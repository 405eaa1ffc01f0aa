"""Services: capture an event around now on cameras, persistent recording, sync now, clean up."""

from __future__ import annotations

import math
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er
import voluptuous as vol

from .const import (
    CONF_POST_SECONDS,
    CONF_PRE_SECONDS,
    DOMAIN,
)
from .coordinator import CameraCoordinator
from .core.errors import PmDvrError
from .data import PmDvrConfigEntry
from .errors import translated, validation_error
from .events import (
    async_service_start_persistent,
    async_service_stop_persistent,
    check_recording,
    event_window,
)

SERVICE_CAPTURE_EVENT = "capture_event"
SERVICE_START_PERSISTENT = "start_persistent_recording"
SERVICE_STOP_PERSISTENT = "stop_persistent_recording"
SERVICE_CLEANUP = "cleanup"
ATTR_LABEL = "label"
ATTR_TARGET_GB = "target_gb"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"

# Ranges and label length are checked by the core, whose errors are translated (not voluptuous').
CAPTURE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_ENTITY_ID): cv.entity_ids,
        vol.Optional(CONF_PRE_SECONDS): vol.Coerce(float),
        vol.Optional(CONF_POST_SECONDS): vol.Coerce(float),
        vol.Optional(ATTR_LABEL): cv.string,
    }
)

START_PERSISTENT_SCHEMA = vol.Schema(
    {vol.Required(ATTR_ENTITY_ID): cv.entity_ids, vol.Optional(ATTR_LABEL): cv.string}
)
STOP_PERSISTENT_SCHEMA = vol.Schema({vol.Required(ATTR_ENTITY_ID): cv.entity_ids})


# The target's range is checked below, with a translated error.
CLEANUP_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_TARGET_GB): vol.Coerce(float),
    }
)


def cameras_for_entities(
    hass: HomeAssistant, entity_ids: list[str]
) -> tuple[PmDvrConfigEntry, list[CameraCoordinator]]:
    """The hub and cameras behind pm_dvr camera entities; one hub per call."""
    registry = er.async_get(hass)
    entry: PmDvrConfigEntry | None = None
    cameras: list[CameraCoordinator] = []
    for entity_id in entity_ids:
        entity = registry.async_get(entity_id)
        owner = (
            hass.config_entries.async_get_entry(entity.config_entry_id)
            if entity is not None
            and entity.platform == DOMAIN
            and entity.domain == Platform.CAMERA
            and entity.config_entry_id
            else None
        )
        if (
            entity is None
            or owner is None
            or owner.state is not ConfigEntryState.LOADED
            or entity.config_subentry_id not in owner.runtime_data.cameras
        ):
            raise validation_error("unknown_camera_entity", entity_id=entity_id)
        if entry is not None and owner is not entry:
            raise validation_error("cameras_of_several_hubs")
        entry = owner
        cameras.append(owner.runtime_data.cameras[entity.config_subentry_id])
    assert entry is not None  # cv.entity_ids refuses an empty list
    return entry, cameras


async def _async_capture_event(call: ServiceCall) -> ServiceResponse:
    """Link the clips around now into a new event folder; answer with its id and folder."""
    entry, cameras = cameras_for_entities(call.hass, call.data[ATTR_ENTITY_ID])
    check_recording(cameras)
    default_pre, default_post = event_window(cameras)
    pre = call.data.get(CONF_PRE_SECONDS, default_pre)
    post = call.data.get(CONF_POST_SECONDS, default_post)
    capture = entry.runtime_data.capture
    assert capture is not None
    try:
        event = await capture.capture(
            [camera.slug for camera in cameras],
            float(pre),
            float(post),
            call.data.get(ATTR_LABEL),
            trigger="service",
        )
    except PmDvrError as err:
        raise translated(err, ServiceValidationError) from err
    response: dict[str, Any] = {"event_id": event.event_id, "path": str(event.path)}
    return response


async def _async_start_persistent(call: ServiceCall) -> ServiceResponse:
    """Link every clip of the cameras (from their pre-roll on) into one event until stopped."""
    entry, cameras = cameras_for_entities(call.hass, call.data[ATTR_ENTITY_ID])
    event = await async_service_start_persistent(entry, cameras, call.data.get(ATTR_LABEL))
    response: dict[str, Any] = {"event_id": event.event_id, "path": str(event.path)}
    return response


async def _async_stop_persistent(call: ServiceCall) -> ServiceResponse:
    """End the cameras' persistent recording after their post-roll (no-op when not recording)."""
    entry, cameras = cameras_for_entities(call.hass, call.data[ATTR_ENTITY_ID])
    events = await async_service_stop_persistent(call.hass, entry, cameras)
    response: dict[str, Any] = {
        "events": [{"event_id": event.event_id, "path": str(event.path)} for event in events]
    }
    return response


SERVICE_SYNC_NOW = "sync_now"
SYNC_NOW_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})


async def _async_sync_now(call: ServiceCall) -> None:
    """Retry every queued upload now, on one hub or on every loaded hub."""
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    entries: list[PmDvrConfigEntry] = [
        entry
        for entry in call.hass.config_entries.async_loaded_entries(DOMAIN)
        if entry_id is None or entry.entry_id == entry_id
    ]
    if entry_id is not None and not entries:
        raise validation_error("hub_not_loaded", entry_id=entry_id)
    for entry in entries:
        if entry.runtime_data.sync is not None:
            await entry.runtime_data.sync.async_sync_now()


def loaded_hub(hass: HomeAssistant, entry_id: str | None) -> PmDvrConfigEntry:
    """The hub a call names, or the only loaded hub when it names none."""
    if entry_id is not None:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            raise validation_error("hub_not_loaded", entry_id=entry_id)
        hub: PmDvrConfigEntry = entry
        return hub
    hubs: list[PmDvrConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if not hubs:
        raise validation_error("no_hub_loaded")
    if len(hubs) > 1:
        raise validation_error("several_hubs")
    return hubs[0]


async def _async_cleanup(call: ServiceCall) -> ServiceResponse:
    """Run retention now; answer with what it deleted."""
    target = call.data.get(ATTR_TARGET_GB)
    if target is not None and not (math.isfinite(target) and target >= 0):
        raise validation_error("invalid_target", target_gb=str(target))
    entry = loaded_hub(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    retention = entry.runtime_data.retention
    assert retention is not None
    result = await retention.async_cleanup(target)
    return {
        "files_deleted": result.files_deleted,
        "bytes_freed": result.bytes_freed,
        "events_deleted": result.events_deleted,
    }


def async_setup_services(hass: HomeAssistant) -> None:
    """Register pm_dvr's services once, whatever the number of hubs."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_CAPTURE_EVENT,
        _async_capture_event,
        schema=CAPTURE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_START_PERSISTENT,
        _async_start_persistent,
        schema=START_PERSISTENT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_STOP_PERSISTENT,
        _async_stop_persistent,
        schema=STOP_PERSISTENT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(DOMAIN, SERVICE_SYNC_NOW, _async_sync_now, schema=SYNC_NOW_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        SERVICE_CLEANUP,
        _async_cleanup,
        schema=CLEANUP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
