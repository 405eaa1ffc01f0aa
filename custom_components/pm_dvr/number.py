"""Numbers of a camera: live motion tuning (sensitivity threshold, minimum object size)."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.number import (
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import PERCENTAGE, EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_MOTION_MIN_SIZE, CONF_MOTION_THRESHOLD, MAX_MOTION_MIN_SIZE
from .core.motion import MotionConfig
from .data import PmDvrConfigEntry
from .entity import PmDvrCameraEntity, setup_camera_platform

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class MotionNumberDescription(NumberEntityDescription):
    """A motion tuning value: the subentry key it persists to and how to read it."""

    setting: str
    integer: bool = False


def _value(config: MotionConfig, setting: str) -> float:
    return config.threshold if setting == CONF_MOTION_THRESHOLD else config.min_area_percent


NUMBERS: tuple[MotionNumberDescription, ...] = (
    MotionNumberDescription(
        key="motion_threshold",
        translation_key="motion_threshold",
        setting=CONF_MOTION_THRESHOLD,
        integer=True,
        native_min_value=1,
        native_max_value=255,
        native_step=1,
        mode=NumberMode.BOX,
        entity_category=EntityCategory.CONFIG,
    ),
    MotionNumberDescription(
        key="motion_min_size",
        translation_key="motion_min_size",
        setting=CONF_MOTION_MIN_SIZE,
        native_min_value=0,
        native_max_value=MAX_MOTION_MIN_SIZE,
        native_step=0.01,
        native_unit_of_measurement=PERCENTAGE,
        mode=NumberMode.BOX,
        entity_category=EntityCategory.CONFIG,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the motion numbers of each camera with motion detection."""
    setup_camera_platform(
        entry,
        Platform.NUMBER,
        async_add_entities,
        lambda coordinator: (
            [PmDvrMotionNumber(coordinator, description) for description in NUMBERS]
            if coordinator.motion_worker
            else []
        ),
    )


class PmDvrMotionNumber(PmDvrCameraEntity, NumberEntity):
    """A detector setting, applied at the next analysed frame and saved with the camera."""

    entity_description: MotionNumberDescription

    @property
    def native_value(self) -> float:
        """The detector's active value."""
        assert self.coordinator.motion_worker is not None
        return _value(self.coordinator.motion_worker.config, self.entity_description.setting)

    async def async_set_native_value(self, value: float) -> None:
        """Tune the detector now; the camera keeps running."""
        description = self.entity_description
        self.coordinator.async_tune_motion(
            **{description.setting: int(value) if description.integer else round(value, 3)}
        )
        self.async_write_ha_state()
