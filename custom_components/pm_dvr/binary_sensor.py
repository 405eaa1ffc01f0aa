"""Binary sensors of a camera: Motion (on at motion, off after the camera's off-delay)."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import PmDvrConfigEntry
from .entity import PmDvrCameraEntity, setup_camera_platform

PARALLEL_UPDATES = 0

MOTION = BinarySensorEntityDescription(
    key="motion", translation_key="motion", device_class=BinarySensorDeviceClass.MOTION
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a Motion sensor to each camera with motion detection."""
    setup_camera_platform(
        entry,
        Platform.BINARY_SENSOR,
        async_add_entities,
        lambda coordinator: (
            [PmDvrMotionSensor(coordinator, MOTION)] if coordinator.motion_worker else []
        ),
    )


class PmDvrMotionSensor(PmDvrCameraEntity, BinarySensorEntity):
    """On while the camera sees motion (and for the off-delay after it)."""

    @property
    def is_on(self) -> bool:
        """Whether motion was seen within the off-delay."""
        return self.coordinator.motion.detected
