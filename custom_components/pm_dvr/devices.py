"""The devices of a hub: the hub itself, one per camera, one per sync target.

Each device belongs to exactly one place: the hub device to the config entry, a camera's or a
target's device to its own subentry (HA 2026 moves a device shared by two subentries and drops the
entities of the one it left).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo

from .compat import async_move_device_to_entry
from .const import (
    CONF_STREAM_INFO,
    CONF_TARGET_TYPE,
    DOMAIN,
    HUB_DEVICE_NAME,
    SUBENTRY_TARGET,
    TARGET_AZURE,
    TARGET_FOLDER,
    TARGET_RCLONE,
)
from .data import PmDvrConfigEntry

MANUFACTURER = "pm_dvr"
TARGET_MODELS = {
    TARGET_AZURE: "Azure Blob Storage",
    TARGET_FOLDER: "Folder",
    TARGET_RCLONE: "rclone remote",
}


def hub_device_info(entry: PmDvrConfigEntry) -> DeviceInfo:
    """The hub's device: storage-wide figures, the upload queue and hub actions."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=HUB_DEVICE_NAME,
        manufacturer=MANUFACTURER,
        model="DVR hub",
    )


def camera_device_info(subentry_id: str, title: str, settings: Mapping[str, Any]) -> DeviceInfo:
    """One device per camera; model from what the stream reported when it was added."""
    info = settings.get(CONF_STREAM_INFO) or {}
    model = None
    if info.get("video_codec"):
        codec = {"h264": "H.264", "hevc": "H.265"}.get(info["video_codec"], info["video_codec"])
        model = f"{codec} {info.get('width')}x{info.get('height')}"
    return DeviceInfo(
        identifiers={(DOMAIN, subentry_id)},
        name=title,
        manufacturer=MANUFACTURER,
        model=model,
    )


def target_device_info(subentry_id: str, title: str, settings: Mapping[str, Any]) -> DeviceInfo:
    """One device per sync target, named as the target."""
    return DeviceInfo(
        identifiers={(DOMAIN, subentry_id)},
        name=title,
        manufacturer=MANUFACTURER,
        model=TARGET_MODELS.get(settings.get(CONF_TARGET_TYPE, ""), "Sync target"),
    )


def find_device(
    registry: dr.DeviceRegistry, entry_id: str, identifier: str
) -> dr.DeviceEntry | None:
    """A device of the entry by its pm_dvr identifier (a lookup both HA lines offer)."""
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(registry, entry_id)
            if (DOMAIN, identifier) in device.identifiers
        ),
        None,
    )


@callback
def async_migrate_devices(hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
    """Give each sync target's entities its own device and take the hub device off targets.

    Up to version 0.4 every target's entities sat on the hub device. The entities move first,
    so moving the hub device away from a target's subentry removes none of them.
    """
    device_registry = dr.async_get(hass)
    entity_registry = er.async_get(hass)
    hub = find_device(device_registry, entry.entry_id, entry.entry_id)
    if hub is None:
        return
    on_hub = er.async_entries_for_device(entity_registry, hub.id, include_disabled_entities=True)
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_TARGET:
            continue
        entities = [e for e in on_hub if e.config_subentry_id == subentry.subentry_id]
        if not entities:
            continue
        info = target_device_info(subentry.subentry_id, subentry.title, subentry.data)
        device = device_registry.async_get_or_create(
            config_entry_id=entry.entry_id,
            config_subentry_id=subentry.subentry_id,
            **info,
        )
        for entity in entities:
            entity_registry.async_update_entity(entity.entity_id, device_id=device.id)
    async_move_device_to_entry(device_registry, hub, entry.entry_id)
