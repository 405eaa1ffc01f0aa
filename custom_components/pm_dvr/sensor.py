"""Sensors: a camera's recording state, stream figures and last event; the hub's storage figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, Platform, UnitOfDataRate, UnitOfInformation
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .const import LAST_EVENT_SENSOR_KEY, signal_event
from .coordinator import CameraCoordinator, CameraStatus, HubStatus
from .core.capture import EventInfo
from .core.event import iso_time
from .core.recorder import RecorderState
from .data import PmDvrConfigEntry
from .entity import PmDvrCameraEntity, PmDvrHubEntity, PmDvrSyncEntity, setup_camera_platform
from .sync import SyncStatus

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class CameraSensorDescription(SensorEntityDescription):
    """A camera sensor: its value, and whether the camera has it."""

    value_fn: Callable[[CameraStatus], StateType]
    exists_fn: Callable[[CameraCoordinator], bool] = lambda coordinator: True


@dataclass(frozen=True, kw_only=True)
class HubSensorDescription(SensorEntityDescription):
    """A hub sensor."""

    value_fn: Callable[[HubStatus], StateType | datetime]


def _has_recorder(coordinator: CameraCoordinator) -> bool:
    return coordinator.recorder is not None


CAMERA_SENSORS: tuple[CameraSensorDescription, ...] = (
    CameraSensorDescription(
        key="recording_state",
        translation_key="recording_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in RecorderState],
        value_fn=lambda status: status.recording.value if status.recording else None,
        exists_fn=_has_recorder,
    ),
    CameraSensorDescription(
        key="bitrate",
        translation_key="bitrate",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.KILOBITS_PER_SECOND,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda status: status.bitrate_kbps,
    ),
    CameraSensorDescription(
        key="fps",
        translation_key="fps",
        native_unit_of_measurement="fps",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda status: status.fps,
    ),
    CameraSensorDescription(
        key="dropped_packets",
        translation_key="dropped_packets",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda status: status.dropped_packets,
        exists_fn=_has_recorder,
    ),
)

HUB_SENSORS: tuple[HubSensorDescription, ...] = (
    HubSensorDescription(
        key="recordings_size",
        translation_key="recordings_size",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: status.recordings_bytes,
    ),
    HubSensorDescription(
        key="events_size",
        translation_key="events_size",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: status.events_bytes,
    ),
    HubSensorDescription(
        key="free_space",
        translation_key="free_space",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: status.free_bytes,
    ),
    HubSensorDescription(
        key="oldest_recording",
        translation_key="oldest_recording",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda status: status.oldest_recording,
    ),
)


@dataclass(frozen=True, kw_only=True)
class SyncSensorDescription(SensorEntityDescription):
    """A sync sensor of the hub."""

    value_fn: Callable[[SyncStatus], StateType | datetime]


SYNC_SENSORS: tuple[SyncSensorDescription, ...] = (
    SyncSensorDescription(
        key="sync_queue",
        translation_key="sync_queue",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: status.queue_length,
    ),
    SyncSensorDescription(
        key="last_upload",
        translation_key="last_upload",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda status: status.last_upload,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add hub sensors once and camera sensors per camera."""
    hub = entry.runtime_data.hub
    assert hub is not None
    async_add_entities(PmDvrHubSensor(hub, description) for description in HUB_SENSORS)
    sync = entry.runtime_data.sync
    assert sync is not None
    async_add_entities(PmDvrSyncSensor(sync, description) for description in SYNC_SENSORS)
    setup_camera_platform(
        entry,
        Platform.SENSOR,
        async_add_entities,
        lambda coordinator: [
            *(
                PmDvrCameraSensor(coordinator, description)
                for description in CAMERA_SENSORS
                if description.exists_fn(coordinator)
            ),
            *last_event_sensors(coordinator),
        ],
    )


class PmDvrCameraSensor(PmDvrCameraEntity, SensorEntity):
    """A camera sensor."""

    entity_description: CameraSensorDescription

    @property
    def native_value(self) -> StateType:
        """The value from the camera's latest status."""
        return self.entity_description.value_fn(self.coordinator.data)


class PmDvrHubSensor(PmDvrHubEntity, SensorEntity):
    """A hub sensor."""

    entity_description: HubSensorDescription

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the hub's latest status."""
        return self.entity_description.value_fn(self.coordinator.data)


class PmDvrSyncSensor(PmDvrSyncEntity, SensorEntity):
    """The upload queue's length or the time of the last verified upload."""

    entity_description: SyncSensorDescription

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the sync coordinator's latest status."""
        return self.entity_description.value_fn(self.coordinator.data)


LAST_EVENT_SENSOR = SensorEntityDescription(
    key=LAST_EVENT_SENSOR_KEY,
    translation_key=LAST_EVENT_SENSOR_KEY,
    device_class=SensorDeviceClass.TIMESTAMP,
)
# What an automation needs to tell events apart and follow them; no file paths.
LAST_EVENT_ATTRIBUTES = ("event_id", "label", "trigger", "state", "cameras", "start", "end")


def last_event_sensors(coordinator: CameraCoordinator) -> list[LastEventSensor]:
    """Events link clips, so only cameras that record have a Last event."""
    if coordinator.recorder is None:
        return []
    return [LastEventSensor(coordinator, LAST_EVENT_SENSOR)]


class LastEventSensor(PmDvrCameraEntity, RestoreSensor):
    """When the camera's latest event was triggered; its id, label, trigger and state alongside.

    The state changes with each new event and the `state` attribute goes from `recording` to
    `complete`, so automations can notify on either. Restored across restarts.
    """

    _attr_native_value: datetime | None = None

    async def async_added_to_hass(self) -> None:
        """Take the capture manager's last event, else what was shown before the restart."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_event(self.coordinator.config_entry.entry_id),
                self._async_event_changed,
            )
        )
        capture = self.coordinator.config_entry.runtime_data.capture
        info = capture.last_event(self.coordinator.slug) if capture is not None else None
        if info is not None:
            self._show(info)
            return
        last_state = await self.async_get_last_state()
        last_data = await self.async_get_last_sensor_data()
        if last_state is None or last_data is None:
            return
        if isinstance(last_data.native_value, datetime):
            self._attr_native_value = last_data.native_value
        self._attr_extra_state_attributes = {
            key: last_state.attributes[key]
            for key in LAST_EVENT_ATTRIBUTES
            if key in last_state.attributes
        }

    @callback
    def _async_event_changed(self, info: EventInfo) -> None:
        if self.coordinator.slug in info.cameras:
            self._show(info)
            self.async_write_ha_state()

    def _show(self, info: EventInfo) -> None:
        created = info.start if info.created is None else info.created
        self._attr_native_value = datetime.fromtimestamp(created, tz=UTC)
        attributes: dict[str, Any] = {
            "event_id": info.event_id,
            "label": info.label,
            "trigger": info.trigger,
            "state": info.state,
            "cameras": list(info.cameras),
            "start": iso_time(info.start),
            "end": None if info.end is None else iso_time(info.end),
        }
        self._attr_extra_state_attributes = attributes
