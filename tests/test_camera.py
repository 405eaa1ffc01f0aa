"""Camera entities: registry and state snapshots, and snapshots of the served video."""

from __future__ import annotations

import cv2
from homeassistant.components.camera import async_get_image
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import numpy as np
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from .common import wait_for

# States that depend on the test disk and on when the first clip closed (checked elsewhere).
VOLATILE_STATES = {"sensor.pm_dvr_free_space", "sensor.pm_dvr_oldest_recording"}


async def test_entities_and_devices(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every entity and device of the hub, as registered and as shown (once both record)."""
    await wait_for(
        lambda: all(
            hass.states.get(camera).state == "recording"
            for camera in ("camera.front_door", "camera.garden")
        )
    )
    entries = er.async_entries_for_config_entry(entity_registry, init_integration.entry_id)
    assert entries
    for entity_entry in sorted(entries, key=lambda e: e.entity_id):
        assert entity_entry == snapshot(name=f"{entity_entry.entity_id}-entry")
        state = hass.states.get(entity_entry.entity_id)
        volatile = ("state",) if entity_entry.entity_id in VOLATILE_STATES else ()
        assert state == snapshot(
            name=f"{entity_entry.entity_id}-state",
            exclude=props("access_token", "entity_picture", *volatile),
        )
    devices = dr.async_entries_for_config_entry(device_registry, init_integration.entry_id)
    for device in sorted(devices, key=lambda d: d.name or ""):
        assert device == snapshot(name=f"device-{device.name}")


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


async def test_camera_image_is_the_served_video(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The snapshot is a JPEG of the stream's latest keyframe, scaled on request."""
    image = await async_get_image(hass, "camera.front_door")
    assert image.content_type == "image/jpeg"
    full = decode(image.content)
    assert full.shape == (360, 640, 3)
    # videotestsrc's ball pattern: a black field with a bright ball.
    assert full.mean() < 60
    assert full.max() > 200
    small = decode((await async_get_image(hass, "camera.front_door", width=320)).content)
    assert small.shape == (180, 320, 3)
    garden = decode((await async_get_image(hass, "camera.garden")).content)
    assert garden.shape == (180, 320, 3)
