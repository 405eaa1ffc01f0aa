"""Motion detection through HA: sensor, image, switch, numbers, zones, sub-stream, recording."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
from typing import Any

import cv2
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State
from homeassistant.helpers import entity_registry as er
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, mock_restore_cache
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pm_dvr.const import (
    CONF_DETECT_STREAM_URL,
    CONF_MOTION_MIN_SIZE,
    CONF_MOTION_OFF_DELAY,
    CONF_MOTION_THRESHOLD,
    CONF_MOTION_ZONES,
    CONF_STORAGE_PATH,
    DOMAIN,
)

from .common import wait_for
from .conftest import camera_subentry
from .rig.rtsp import RtspServer
from .rig.scenes import make_scene

W, H, FPS, SECONDS = 320, 180, 15, 10
KINDS = ("object", "light_ramp", "night_noise", "clock")
WHOLE_FRAME_IGNORED = json.dumps([{"mode": "ignore", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}])


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The module's labelled clips, generated once (small: 320x180)."""
    root = tmp_path_factory.mktemp("motion_scenes")
    paths = {}
    for kind in KINDS:
        paths[kind] = root / f"{kind}.mp4"
        make_scene(kind, paths[kind], W, H, FPS, SECONDS, seed=3)
    return paths


def _server(mounts: dict[str, Path]) -> Iterator[RtspServer]:
    server = RtspServer({path: f"file:{clip}" for path, clip in mounts.items()})
    server.start()
    yield server
    server.stop()


def _entry(storage_path: Path, hub_options: dict[str, Any], cameras: list[Any]) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        options=hub_options,
        subentries_data=cameras,
    )


def _track(hass: HomeAssistant, states: dict[str, list[str]]) -> None:
    def track(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"].startswith("binary_sensor.") and new is not None:
            states.setdefault(event.data["entity_id"], []).append(new.state)

    hass.bus.async_listen("state_changed", track)


def _red_pixels(jpeg: bytes) -> int:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    b, g, r = (image[..., i].astype(int) for i in range(3))
    return int(np.count_nonzero((r > 180) & (g < 80) & (b < 80)))


@pytest.fixture
def server(scenes: dict[str, Path]) -> Iterator[RtspServer]:
    """Each camera its own mount (a file plays once, from the first client on)."""
    yield from _server(
        {
            "/walk-main": scenes["object"],
            "/walk": scenes["object"],
            "/masked": scenes["object"],
            "/ramp": scenes["light_ramp"],
            "/noise": scenes["night_noise"],
            "/clock": scenes["clock"],
        }
    )


async def test_motion_on_positives_off_on_negatives(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    server: RtspServer,
    storage_path: Path,
    hub_options: dict[str, Any],
) -> None:
    """Walkers turn Motion on (then off after the delay) with a picture; nuisances never do."""
    entry = _entry(
        storage_path,
        hub_options,
        [
            # The sub-stream path: motion runs on its own connection, the recorder on the main.
            camera_subentry(
                "Walk",
                server.url("/walk-main"),
                "walk",
                **{CONF_DETECT_STREAM_URL: server.url("/walk"), CONF_MOTION_OFF_DELAY: 1},
            ),
            camera_subentry(
                "Masked",
                server.url("/masked"),
                "masked",
                **{CONF_MOTION_ZONES: WHOLE_FRAME_IGNORED},
            ),
            camera_subentry("Ramp", server.url("/ramp"), "ramp"),
            camera_subentry("Noise", server.url("/noise"), "noise"),
            camera_subentry("Clock", server.url("/clock"), "clock"),
        ],
    )
    states: dict[str, list[str]] = {}
    _track(hass, states)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    cameras = entry.runtime_data.cameras
    assert hass.states.get("binary_sensor.walk_motion").state == STATE_OFF
    assert hass.states.get("image.walk_last_motion").state == STATE_UNKNOWN

    await wait_for(lambda: hass.states.get("binary_sensor.walk_motion").state == STATE_ON, 15)
    await wait_for(lambda: hass.states.get("image.walk_last_motion").state != STATE_UNKNOWN)
    client = await hass_client()
    response = await client.get("/api/image_proxy/image.walk_last_motion")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert _red_pixels(await response.read()) > 20  # the outline
    # Off one second after the last motion (walkers come one after another, the clip ends).
    await wait_for(lambda: hass.states.get("binary_sensor.walk_motion").state == STATE_OFF, 15)

    # Let every camera's clip play out (about 5 fps of analysis for 10 s).
    await wait_for(
        lambda: all(
            c.motion_worker is not None and c.motion_worker.stats.analysed_frames >= 40
            for c in cameras.values()
        ),
        timeout=20,
    )
    for name in ("masked", "ramp", "noise", "clock"):
        assert STATE_ON not in states.get(f"binary_sensor.{name}_motion", []), name
    # Motion shares the main session with the recorder there: packets decode, clips are written.
    masked = next(c for c in cameras.values() if c.slug == "masked")
    assert masked.motion_worker is not None
    stats = masked.motion_worker.stats
    assert stats.decode_errors == 0
    assert stats.decoded_frames > 100
    assert masked.data.dropped_packets == 0
    assert len(list((storage_path / "recordings" / "masked").glob("*/*.mp4"))) >= 2
    assert len(list((storage_path / "recordings" / "walk").glob("*/*.mp4"))) >= 2
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
def tune_server(scenes: dict[str, Path]) -> Iterator[RtspServer]:
    """One walker clip for the switch and number test."""
    yield from _server({"/yard": scenes["object"]})


async def test_switch_restored_off_then_on_and_numbers(
    hass: HomeAssistant,
    tune_server: RtspServer,
    storage_path: Path,
    hub_options: dict[str, Any],
    entity_registry: er.EntityRegistry,
) -> None:
    """Restored off: nothing is decoded; on: detection runs; numbers tune it live."""
    entry = _entry(
        storage_path, hub_options, [camera_subentry("Yard", tune_server.url("/yard"), "yard")]
    )
    entry.add_to_hass(hass)
    entity_registry.async_get_or_create(
        "switch",
        DOMAIN,
        "sub_yard_motion_detection",
        suggested_object_id="yard_motion_detection",
        config_entry=entry,
    )
    mock_restore_cache(hass, [State("switch.yard_motion_detection", STATE_OFF)])
    states: dict[str, list[str]] = {}
    _track(hass, states)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.cameras["sub_yard"]
    worker = coordinator.motion_worker
    assert worker is not None
    assert hass.states.get("switch.yard_motion_detection").state == STATE_OFF
    await wait_for(lambda: coordinator.data.clips >= 1, timeout=20)  # recording runs
    assert worker.stats.decoded_frames == 0
    assert STATE_ON not in states.get("binary_sensor.yard_motion", [])

    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: "switch.yard_motion_detection"}, blocking=True
    )
    assert hass.states.get("switch.yard_motion_detection").state == STATE_ON
    await wait_for(lambda: worker.stats.analysed_frames > 0)

    session = coordinator.session
    await hass.services.async_call(
        "number",
        "set_value",
        {ATTR_ENTITY_ID: "number.yard_motion_threshold", "value": 40},
        blocking=True,
    )
    await hass.services.async_call(
        "number",
        "set_value",
        {ATTR_ENTITY_ID: "number.yard_motion_minimum_size", "value": 0.5},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert worker.config.threshold == 40
    assert worker.config.min_area_percent == 0.5
    assert hass.states.get("number.yard_motion_threshold").state == "40"
    assert hass.states.get("number.yard_motion_minimum_size").state == "0.5"
    # Persisted with the camera, which kept running (same coordinator, session and worker).
    data = entry.subentries["sub_yard"].data
    assert data[CONF_MOTION_THRESHOLD] == 40
    assert data[CONF_MOTION_MIN_SIZE] == 0.5
    assert entry.runtime_data.cameras["sub_yard"] is coordinator
    assert coordinator.session is session
    assert session.available

    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: "switch.yard_motion_detection"}, blocking=True
    )
    assert hass.states.get("binary_sensor.yard_motion").state == STATE_OFF
    assert await hass.config_entries.async_unload(entry.entry_id)
