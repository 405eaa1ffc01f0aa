"""Continuous recording through HA: clips that decode, the switch, drops, restarts, recovery."""

from __future__ import annotations

from pathlib import Path
import shutil
import time

import av
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON, STATE_OFF
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, mock_restore_cache

from custom_components.pm_dvr.const import DOMAIN

from .common import wait_for
from .conftest import camera_subentry, hub_like
from .rig.clipfiles import decode_cut_clip
from .rig.rtsp import RtspServer


def clips_of(storage: Path, camera: str) -> list[Path]:
    return sorted((storage / "recordings" / camera).glob("*/*.mp4"))


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_clips_are_written_and_decode(
    hass: HomeAssistant, init_integration: MockConfigEntry, storage_path: Path
) -> None:
    """Clips of the set length appear per camera and day, decode whole, and are indexed."""
    await wait_for(lambda: len(clips_of(storage_path, "front-door")) >= 2, timeout=30)
    clip = clips_of(storage_path, "front-door")[0]
    assert clip.parent.name.count("-") == 2  # YYYY-MM-DD
    frames = await hass.async_add_executor_job(decoded_frames, clip)
    assert frames >= 2 * 25 * 0.9  # at least segment_seconds of 25 fps video
    assert hass.states.get("sensor.front_door_recording_state").state == "recording"
    index = init_integration.runtime_data.index
    assert clip in [c.path for c in index.clips("front-door")]
    await wait_for(lambda: float(hass.states.get("sensor.pm_dvr_recordings_size").state) > 0)


async def test_recording_switch(
    hass: HomeAssistant, init_integration: MockConfigEntry, storage_path: Path
) -> None:
    """Off closes the clip and writes nothing more while the camera stays up; on resumes."""
    await wait_for(lambda: clips_of(storage_path, "garden"))
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: "switch.garden_recording"}, blocking=True
    )
    assert hass.states.get("switch.garden_recording").state == STATE_OFF
    await wait_for(lambda: hass.states.get("sensor.garden_recording_state").state == "stopped")
    # The clip under way closes at the camera's next packet; its writer thread then renames it
    # (a .part may not even exist yet when the state says stopped: the writer opens it).
    recorder = init_integration.runtime_data.cameras["sub_garden"].recorder
    assert recorder is not None
    await wait_for(lambda: not recorder.clip_open)
    assert await hass.async_add_executor_job(recorder.flush, 10)
    assert not list((storage_path / "recordings" / "garden").glob("*/*.part"))
    count = len(clips_of(storage_path, "garden"))
    await hass.async_add_executor_job(time.sleep, 3)
    assert len(clips_of(storage_path, "garden")) == count
    assert hass.states.get("camera.garden").state == "idle"
    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: "switch.garden_recording"}, blocking=True
    )
    await wait_for(lambda: len(clips_of(storage_path, "garden")) > count, timeout=30)
    assert hass.states.get("sensor.garden_recording_state").state == "recording"


async def test_recording_switch_restored_before_start(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    storage_path: Path,
) -> None:
    """A switch left off stays off across a restart: not one clip is written meanwhile."""
    mock_config_entry.add_to_hass(hass)
    entity_registry.async_get_or_create(
        "switch",
        DOMAIN,
        "sub_front-door_recording",
        suggested_object_id="front_door_recording",
        config_entry=mock_config_entry,
    )
    mock_restore_cache(hass, [State("switch.front_door_recording", STATE_OFF)])
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(lambda: clips_of(storage_path, "garden"), timeout=30)
    assert hass.states.get("switch.front_door_recording").state == STATE_OFF
    assert hass.states.get("sensor.front_door_recording_state").state == "stopped"
    assert not (storage_path / "recordings" / "front-door").exists()
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


@pytest.fixture
def private_entry(mock_config_entry: MockConfigEntry, rtsp_private: RtspServer) -> MockConfigEntry:
    """A hub whose only camera is on a server the test may kill."""
    return hub_like(
        mock_config_entry, "private", [camera_subentry("Drive", rtsp_private.url("/cam"), "drive")]
    )


async def test_camera_drop_closes_clip_and_resumes(
    hass: HomeAssistant,
    private_entry: MockConfigEntry,
    rtsp_private: RtspServer,
    storage_path: Path,
) -> None:
    """Killed mid-clip: the clip is closed and plays; recording resumes in a new clip."""
    states: list[str] = []

    def track(event: Event[EventStateChangedData]) -> None:
        if event.data["entity_id"] == "sensor.drive_recording_state" and event.data["new_state"]:
            states.append(event.data["new_state"].state)

    unsub = hass.bus.async_listen("state_changed", track)
    private_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(private_entry.entry_id)
    await wait_for(lambda: clips_of(storage_path, "drive"), timeout=30)
    await hass.async_add_executor_job(time.sleep, 1)
    rtsp_private.stop(kill=True)
    await wait_for(lambda: "reconnecting" in states[1:])
    # The clip was closed before the state changed; its writer thread renames it.
    recorder = private_entry.runtime_data.cameras["sub_drive"].recorder
    assert recorder is not None
    assert await hass.async_add_executor_job(recorder.flush, 10)
    assert not list((storage_path / "recordings" / "drive").glob("*/*.part"))
    before = clips_of(storage_path, "drive")
    last = before[-1]
    assert await hass.async_add_executor_job(lambda: len(decode_cut_clip(last))) > 0
    await hass.async_add_executor_job(rtsp_private.start)
    await wait_for(lambda: len(clips_of(storage_path, "drive")) > len(before), timeout=40)
    assert states[-1] == "recording" or "recording" in states[states.index("reconnecting") :]
    unsub()
    assert await hass.config_entries.async_unload(private_entry.entry_id)


@pytest.mark.parametrize(
    "camera_subentries",
    [[camera_subentry("Watch", "rtsp://127.0.0.1:1/never", "watch", record=False)]],
)
async def test_record_off_keeps_camera_without_recording(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, storage_path: Path
) -> None:
    """`record: off`: the camera has no recording entities and writes nothing."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("camera.watch") is not None
    assert hass.states.get("switch.watch_recording") is None
    assert hass.states.get("sensor.watch_recording_state") is None
    assert not (storage_path / "recordings" / "watch").exists()
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


async def test_unclean_stop_leftovers_recovered_at_setup(
    hass: HomeAssistant, init_integration: MockConfigEntry, storage_path: Path
) -> None:
    """A `.part` left by a power cut is finalised and indexed when the hub starts."""
    entry = init_integration
    await wait_for(lambda: clips_of(storage_path, "front-door"))
    assert await hass.config_entries.async_unload(entry.entry_id)
    clip = clips_of(storage_path, "front-door")[0]
    leftover = clip.with_name("20200101-000000.mp4.part")
    leftover.parent.mkdir(parents=True, exist_ok=True)
    await hass.async_add_executor_job(shutil.copy, clip, leftover)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    recovered = leftover.with_name("20200101-000000.mp4")
    assert recovered.exists()
    assert not leftover.exists()
    assert recovered in [c.path for c in entry.runtime_data.index.clips("front-door")]
    assert await hass.async_add_executor_job(decoded_frames, recovered) > 0
