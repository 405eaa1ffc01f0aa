"""Sensors: a camera's recording state and stream figures; the hub's storage figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, Platform, UnitOfDataRate, UnitOfInformation
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import CameraCoordinator, CameraStatus, HubStatus
from .core.recorder import RecorderState
from .data import PmDvrConfigEntry
from .entity import PmDvrCameraEntity, PmDvrHubEntity, setup_camera_platform

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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add hub sensors once and camera sensors per camera."""
    hub = entry.runtime_data.hub
    assert hub is not None
    async_add_entities(PmDvrHubSensor(hub, description) for description in HUB_SENSORS)
    setup_camera_platform(
        entry,
        Platform.SENSOR,
        async_add_entities,
        lambda coordinator: [
            PmDvrCameraSensor(coordinator, description)
            for description in CAMERA_SENSORS
            if description.exists_fn(coordinator)
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
