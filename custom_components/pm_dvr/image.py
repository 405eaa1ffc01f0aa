"""Image of a camera: Last motion (the frame with the moving areas outlined)."""

from __future__ import annotations

from datetime import datetime

from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CameraCoordinator
from .data import PmDvrConfigEntry
from .entity import PmDvrCameraEntity, setup_camera_platform

PARALLEL_UPDATES = 0

LAST_MOTION = ImageEntityDescription(key="last_motion", translation_key="last_motion")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a Last motion image to each camera with motion detection."""
    setup_camera_platform(
        entry,
        Platform.IMAGE,
        async_add_entities,
        lambda coordinator: (
            [PmDvrMotionImage(coordinator, LAST_MOTION)] if coordinator.motion_worker else []
        ),
    )


class PmDvrMotionImage(PmDvrCameraEntity, ImageEntity):
    """The picture of the latest motion event (Motion on until off), with what moved outlined.

    It changes at most twice per event, so at most two logbook entries: when the event starts
    (its first outlined frame, drawn in the motion thread) and when it ends (its best frame,
    the one outlining the most, drawn in the executor) unless the first was the best.
    """

    _attr_content_type = "image/jpeg"

    def __init__(self, coordinator: CameraCoordinator, description: ImageEntityDescription) -> None:
        super().__init__(coordinator, description)
        ImageEntity.__init__(self, coordinator.hass)

    @property
    def image_last_updated(self) -> datetime | None:
        """When the picture was taken (the image's state)."""
        return self.coordinator.motion.image_time

    async def async_image(self) -> bytes | None:
        """The JPEG (already encoded)."""
        return self.coordinator.motion.image
