"""Binary sensors: a camera's Motion (off after its off-delay); a sync target's problem."""

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
from .entity import PmDvrCameraEntity, PmDvrSyncEntity, setup_camera_platform, setup_target_platform

PARALLEL_UPDATES = 0

MOTION = BinarySensorEntityDescription(
    key="motion", translation_key="motion", device_class=BinarySensorDeviceClass.MOTION
)
TARGET_PROBLEM = BinarySensorEntityDescription(
    key="problem", translation_key="target_problem", device_class=BinarySensorDeviceClass.PROBLEM
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
    setup_target_platform(
        entry,
        Platform.BINARY_SENSOR,
        async_add_entities,
        lambda sync, target_id: [PmDvrTargetProblemSensor(sync, TARGET_PROBLEM, target_id)],
    )


class PmDvrMotionSensor(PmDvrCameraEntity, BinarySensorEntity):
    """On while the camera sees motion (and for the off-delay after it)."""

    @property
    def is_on(self) -> bool:
        """Whether motion was seen within the off-delay."""
        return self.coordinator.motion.detected


class PmDvrTargetProblemSensor(PmDvrSyncEntity, BinarySensorEntity):
    """On while a sync target fails (unreachable, refused login, verification failed)."""

    @property
    def is_on(self) -> bool:
        """Whether the target's last attempt failed."""
        assert self.target_id is not None
        status = self.coordinator.data.targets.get(self.target_id)
        return status is not None and not status.ok

    @property
    def extra_state_attributes(self) -> dict[str, str | None]:
        """Why it fails, as a code (the message may name hosts, so it stays in the log)."""
        assert self.target_id is not None
        status = self.coordinator.data.targets.get(self.target_id)
        return {"reason": status.reason if status is not None and not status.ok else None}
