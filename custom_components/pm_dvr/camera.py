"""Camera entity: live view and snapshots from the camera's one connection, never a second one.

HA's stream worker (HLS) and go2rtc (WebRTC) open pm_dvr's live endpoint, which serves the
session's packets; snapshots decode the session's newest frame.
"""

from __future__ import annotations

from homeassistant.components.camera import Camera, CameraEntityDescription, CameraEntityFeature
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CameraCoordinator
from .core.recorder import RecorderState
from .data import PmDvrConfigEntry
from .entity import PmDvrCameraEntity, setup_camera_platform
from .views import live_url

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

    @property
    def is_recording(self) -> bool:
        """Recording now (the entity's state is "recording")."""
        return self.coordinator.data.recording is RecorderState.RECORDING

    @property
    def is_streaming(self) -> bool:
        """Someone watches live (HA's stream, go2rtc or a player)."""
        return self.coordinator.watching

    @property
    def motion_detection_enabled(self) -> bool:
        """The Motion detection switch."""
        return self.coordinator.data.motion_enabled

    async def async_enable_motion_detection(self) -> None:
        """`camera.enable_motion_detection`: the same as turning the Motion switch on."""
        self.coordinator.async_set_motion(True)

    async def async_disable_motion_detection(self) -> None:
        """`camera.disable_motion_detection`: the same as turning the Motion switch off."""
        self.coordinator.async_set_motion(False)

    async def stream_source(self) -> str:
        """pm_dvr's live endpoint for this camera: HA's stream never opens the camera itself."""
        return live_url(self.hass, self.coordinator)

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """JPEG of the newest frame, scaled to fit when asked."""
        return await self.coordinator.async_snapshot(width, height)
