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
    """The latest motion picture; JPEG drawn in the motion thread, at most once a second."""

    _attr_content_type = "image/jpeg"

    def __init__(self, coordinator: CameraCoordinator, description: ImageEntityDescription) -> None:
        super().__init__(coordinator, description)
        ImageEntity.__init__(self, coordinator.hass)

    @property
    def image_last_updated(self) -> datetime | None:
        """When the picture was taken."""
        return self.coordinator.motion.image_time

    async def async_image(self) -> bytes | None:
        """The JPEG (already encoded)."""
        return self.coordinator.motion.image
