"""Camera entity: HA's stream plays the camera URL; snapshots come from the session's keyframes."""

from __future__ import annotations

from homeassistant.components.camera import Camera, CameraEntityDescription, CameraEntityFeature
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CameraCoordinator
from .data import PmDvrConfigEntry
from .entity import PmDvrCameraEntity, setup_camera_platform

PARALLEL_UPDATES = 0

CAMERA_DESCRIPTION = CameraEntityDescription(key="camera")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a camera entity per camera subentry."""
    setup_camera_platform(
        entry,
        Platform.CAMERA,
        async_add_entities,
        lambda coordinator: [PmDvrCamera(coordinator)],
    )


class PmDvrCamera(PmDvrCameraEntity, Camera):
    """The camera: its live stream and its latest keyframe as a snapshot."""

    _attr_name = None
    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, coordinator: CameraCoordinator) -> None:
        PmDvrCameraEntity.__init__(self, coordinator, CAMERA_DESCRIPTION)
        Camera.__init__(self)

    @property
    def available(self) -> bool:
        """Available while the session streams."""
        return super().available and self.coordinator.data.available

    async def stream_source(self) -> str:
        """The camera URL, for HA's stream integration."""
        return self.coordinator.stream_url

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """JPEG of the latest keyframe, scaled to fit when asked."""
        return await self.coordinator.async_snapshot(width, height)
