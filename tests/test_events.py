"""Events in HA: capture_event, persistent recording (services, switch, across a reload),
motion events, the Last event sensor, and the translated validation errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
import json
from pathlib import Path
import time
from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)

from custom_components.pm_dvr.const import (
    CONF_MOTION_EVENTS,
    CONF_MOTION_OFF_DELAY,
    CONF_STORAGE_PATH,
    DOMAIN,
    EVENT_PM_DVR,
)

from .common import wait_for
from .conftest import camera_subentry, two_cameras
from .rig.rtsp import RtspServer
from .rig.scenes import make_scene

FRONT_SWITCH = "switch.front_door_persistent_recording"
GARDEN_SWITCH = "switch.garden_persistent_recording"
FRONT_SENSOR = "sensor.front_door_last_event"


@pytest.fixture
def camera_subentries(rtsp_server: RtspServer) -> list[ConfigSubentryData]:
    """The two cameras with short event windows (2 s before and after), as the tests wait."""
    return two_cameras(rtsp_server, pre_seconds=2, post_seconds=2)


def read_event(folder: Path) -> dict:
    return json.loads((folder / "event.json").read_text())


async def test_capture_defaults_to_the_longest_camera_window(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Without pre/post, several cameras get the longest of their windows: none is cut short."""
    entry = init_integration
    garden_id = next(s for s, sub in entry.subentries.items() if sub.title == "Garden")
    hass.config_entries.async_update_subentry(
        entry,
        entry.subentries[garden_id],
        data={**entry.subentries[garden_id].data, "post_seconds": 3},
    )
    await hass.async_block_till_done()
    cameras = entry.runtime_data.cameras
    await wait_for(
        lambda: all(c.recorder is not None and c.recorder.enabled for c in cameras.values())
    )
    response = await hass.services.async_call(
        DOMAIN,
        "capture_event",
        {ATTR_ENTITY_ID: ["camera.front_door", "camera.garden"]},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    event = await hass.async_add_executor_job(read_event, Path(str(response["path"])))
    created = datetime.fromisoformat(event["created"])
    requested = event["requested"]
    assert (created - datetime.fromisoformat(requested["start"])).total_seconds() == pytest.approx(
        2
    )
    assert (datetime.fromisoformat(requested["end"]) - created).total_seconds() == pytest.approx(3)


async def test_capture_links_window_and_completes(
    hass: HomeAssistant, init_integration: MockConfigEntry, storage_path: Path
) -> None:
    """Pre 4 s / post 4 s on 2-s clips: pre-roll at once, post-roll once recorded, same inodes."""
    index = init_integration.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 3, timeout=30)
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_PM_DVR, fired.append)
    response = await hass.services.async_call(
        DOMAIN,
        "capture_event",
        {
            ATTR_ENTITY_ID: ["camera.front_door"],
            "pre_seconds": 4,
            "post_seconds": 4,
            "label": "../../Etc",
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    folder = Path(str(response["path"]))
    assert folder.parent == storage_path / "events"
    assert str(response["event_id"]).endswith("_etc")
    first = await hass.async_add_executor_job(read_event, folder)
    assert first["state"] == "recording"
    assert first["clips"]["front-door"]  # pre-roll linked before the call returned
    await wait_for(lambda: read_event(folder)["state"] == "complete", timeout=30)
    event = await hass.async_add_executor_job(read_event, folder)
    linked = sorted((folder / "front-door").iterdir())
    assert [p.name for p in linked] == [c["name"] for c in event["clips"]["front-door"]]
    recordings = {c.path.name: c for c in index.clips("front-door")}
    for path in linked:
        assert path.stat().st_ino == recordings[path.name].path.stat().st_ino
    covered = (recordings[linked[0].name].start, recordings[linked[-1].name].end)
    assert covered[1] - covered[0] >= 8 - 2.5
    # (event.json is written in a worker thread; the completion is announced once the capture
    # task is back on the loop, a task HA's block_till_done does not wait for)
    await wait_for(lambda: len(fired) == 2)
    assert [e.data["state"] for e in fired] == ["recording", "complete"]
    assert fired[0].data["event_id"] == response["event_id"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({ATTR_ENTITY_ID: ["camera.nope"]}, "unknown_camera_entity"),
        ({ATTR_ENTITY_ID: ["camera.front_door"], "pre_seconds": 5000}, "invalid_window"),
        ({ATTR_ENTITY_ID: ["camera.front_door"], "post_seconds": -1}, "invalid_window"),
        ({ATTR_ENTITY_ID: ["camera.front_door"], "label": "x" * 65}, "label_too_long"),
    ],
)
async def test_capture_rejects_bad_input(
    hass: HomeAssistant, init_integration: MockConfigEntry, data: dict, key: str
) -> None:
    """Bad input is a translated validation error, and no event folder is made."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "capture_event", data, blocking=True, return_response=True
        )
    assert err.value.translation_key == key
    assert not list((init_integration.runtime_data.storage / "events").iterdir())


async def test_capture_needs_recording(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A camera whose recording is off cannot capture."""
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: "switch.garden_recording"}, blocking=True
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "capture_event",
            {ATTR_ENTITY_ID: ["camera.garden"]},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "recording_off"
    assert err.value.translation_placeholders == {"camera": "Garden"}


def linked_names(folder: Path, camera: str) -> set[str]:
    return {p.name for p in (folder / camera).iterdir()}


def in_window(clips: Any, doc: dict[str, Any], slack: float = 0.001) -> set[str]:
    """The recordings an event over its requested window must hold (as the core offers them).

    event.json keeps times to the millisecond (cut, not rounded), so a clip that ends within a
    millisecond of the window's start may or may not be in it: `slack` < 0 leaves such clips
    out, > 0 takes them in.
    """
    start = datetime.fromisoformat(doc["requested"]["start"]).timestamp()
    end = datetime.fromisoformat(doc["requested"]["end"]).timestamp()
    return {c.path.name for c in clips if c.end >= start + 0.001 - slack and c.start <= end + slack}


async def switch(hass: HomeAssistant, service: str, entity_id: str) -> None:
    await hass.services.async_call("switch", service, {ATTR_ENTITY_ID: entity_id}, blocking=True)


async def test_persistent_recording_survives_a_reload(
    hass: HomeAssistant, init_integration: MockConfigEntry, storage_path: Path
) -> None:
    """Switch on, clips, entry reloaded (state from the Store), off: every clip in between."""
    entry = init_integration
    await wait_for(lambda: len(entry.runtime_data.index.clips("front-door")) >= 2, timeout=30)
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_PM_DVR, fired.append)
    assert hass.states.get(FRONT_SENSOR).state == STATE_UNKNOWN
    await switch(hass, SERVICE_TURN_ON, FRONT_SWITCH)
    assert hass.states.get(FRONT_SWITCH).state == STATE_ON
    assert hass.states.get(GARDEN_SWITCH).state == STATE_OFF
    sensor = hass.states.get(FRONT_SENSOR)
    event_id = sensor.attributes["event_id"]
    assert sensor.attributes["trigger"] == "persistent"
    assert sensor.attributes["state"] == "recording"
    assert sensor.attributes["end"] is None
    assert "path" not in sensor.attributes
    assert abs(datetime.fromisoformat(sensor.state).timestamp() - time.time()) < 5
    folder = storage_path / "events" / event_id

    count = len(entry.runtime_data.index.clips("front-door"))
    await wait_for(lambda: len(entry.runtime_data.index.clips("front-door")) >= count + 2, 30)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    reloaded_at = time.time()
    await wait_for(lambda: all(c.session.available for c in entry.runtime_data.cameras.values()))
    assert hass.states.get(FRONT_SWITCH).state == STATE_ON
    assert hass.states.get(FRONT_SENSOR).attributes["event_id"] == event_id
    count = len(entry.runtime_data.index.clips("front-door"))
    await wait_for(lambda: len(entry.runtime_data.index.clips("front-door")) >= count + 2, 30)

    await switch(hass, SERVICE_TURN_OFF, FRONT_SWITCH)
    assert hass.states.get(FRONT_SWITCH).state == STATE_OFF
    await wait_for(lambda: read_event(folder)["state"] == "complete", timeout=30)
    doc = await hass.async_add_executor_job(read_event, folder)
    clips = entry.runtime_data.index.clips("front-door")
    linked = await hass.async_add_executor_job(linked_names, folder, "front-door")
    # (the switch goes on right after a clip closes, so the window's start, two seconds of
    # pre-roll before it, falls at the end of an earlier clip: often within a millisecond)
    assert in_window(clips, doc, slack=-0.001) <= linked <= in_window(clips, doc)
    by_name = {c.path.name: c for c in clips}
    assert any(by_name[name].end < reloaded_at for name in linked)
    assert any(by_name[name].start > reloaded_at for name in linked)
    assert len(linked) >= 5
    await wait_for(lambda: len(fired) == 2)  # (announced after event.json is written)
    await hass.async_block_till_done()
    assert hass.states.get(FRONT_SENSOR).attributes["state"] == "complete"
    # The bus hears the start and the completion, not the resume after the reload.
    assert [(e.data["event_id"], e.data["state"]) for e in fired] == [
        (event_id, "recording"),
        (event_id, "complete"),
    ]


async def test_persistent_services_on_two_cameras(
    hass: HomeAssistant, init_integration: MockConfigEntry, storage_path: Path
) -> None:
    """One event for both cameras; each stops on its own; starting again is a no-op."""
    both = {ATTR_ENTITY_ID: ["camera.front_door", "camera.garden"], "label": "Holiday"}
    started = await hass.services.async_call(
        DOMAIN, "start_persistent_recording", both, blocking=True, return_response=True
    )
    assert started is not None
    event_id = str(started["event_id"])
    assert event_id.endswith("_holiday")
    assert Path(str(started["path"])) == storage_path / "events" / event_id
    assert hass.states.get(FRONT_SWITCH).state == STATE_ON
    assert hass.states.get(GARDEN_SWITCH).state == STATE_ON
    again = await hass.services.async_call(
        DOMAIN,
        "start_persistent_recording",
        {ATTR_ENTITY_ID: ["camera.front_door"]},
        blocking=True,
        return_response=True,
    )
    assert again == started

    stopped = await hass.services.async_call(
        DOMAIN,
        "stop_persistent_recording",
        {ATTR_ENTITY_ID: ["camera.garden"]},
        blocking=True,
        return_response=True,
    )
    assert stopped == {"events": [started]}
    assert hass.states.get(GARDEN_SWITCH).state == STATE_OFF
    assert hass.states.get(FRONT_SWITCH).state == STATE_ON
    index = init_integration.runtime_data.index
    count = len(index.clips("front-door"))
    await wait_for(lambda: len(index.clips("front-door")) >= count + 2, timeout=30)
    await hass.services.async_call(
        DOMAIN, "stop_persistent_recording", {ATTR_ENTITY_ID: ["camera.front_door"]}, blocking=True
    )
    assert hass.states.get(FRONT_SWITCH).state == STATE_OFF
    folder = storage_path / "events" / event_id
    await wait_for(lambda: read_event(folder)["state"] == "complete", timeout=30)
    doc = await hass.async_add_executor_job(read_event, folder)
    assert doc["cameras"] == ["front-door", "garden"]
    assert doc["label"] == "Holiday"
    assert doc["clips"]["front-door"]
    assert doc["clips"]["garden"]
    # Nothing left to stop: an empty answer, not an error.
    nothing = await hass.services.async_call(
        DOMAIN,
        "stop_persistent_recording",
        {ATTR_ENTITY_ID: ["camera.garden"]},
        blocking=True,
        return_response=True,
    )
    assert nothing == {"events": []}


@pytest.mark.parametrize(
    ("service", "data", "key"),
    [
        ("start_persistent_recording", {ATTR_ENTITY_ID: ["camera.nope"]}, "unknown_camera_entity"),
        ("stop_persistent_recording", {ATTR_ENTITY_ID: ["camera.nope"]}, "unknown_camera_entity"),
        (
            "start_persistent_recording",
            {ATTR_ENTITY_ID: ["camera.front_door"], "label": "x" * 65},
            "label_too_long",
        ),
        (
            "start_persistent_recording",
            {ATTR_ENTITY_ID: ["switch.front_door_recording"]},
            "unknown_camera_entity",
        ),
    ],
)
async def test_persistent_services_reject_bad_input(
    hass: HomeAssistant, init_integration: MockConfigEntry, service: str, data: dict, key: str
) -> None:
    """Translated validation errors; nothing is recorded."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, service, data, blocking=True, return_response=True)
    assert err.value.translation_key == key
    assert err.value.translation_domain == DOMAIN
    assert not list((init_integration.runtime_data.storage / "events").iterdir())
    assert hass.states.get(FRONT_SWITCH).state == STATE_OFF


async def test_persistent_needs_recording(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Service and switch refuse a camera whose recording is off, naming it."""
    await switch(hass, SERVICE_TURN_OFF, "switch.garden_recording")
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "start_persistent_recording",
            {ATTR_ENTITY_ID: ["camera.front_door", "camera.garden"]},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "recording_off"
    assert err.value.translation_placeholders == {"camera": "Garden"}
    with pytest.raises(ServiceValidationError) as err:
        await switch(hass, SERVICE_TURN_ON, GARDEN_SWITCH)
    assert err.value.translation_key == "recording_off"
    assert hass.states.get(GARDEN_SWITCH).state == STATE_OFF
    assert hass.states.get(FRONT_SWITCH).state == STATE_OFF


@pytest.fixture
def restored_last_event(hass: HomeAssistant) -> None:
    """What the Front door's Last event showed before a restart (its entity id is derived)."""
    attributes = {
        "event_id": "20261201-080000-000_doorbell",
        "label": "doorbell",
        "trigger": "service",
        "state": "complete",
        "cameras": ["front-door"],
        "start": "2026-12-01T07:59:50.000+00:00",
        "end": "2026-12-01T08:00:30.000+00:00",
        "path": "/secret/not/restored",
    }
    value = {"__type": "<class 'datetime.datetime'>", "isoformat": "2026-12-01T08:00:00+00:00"}
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(FRONT_SENSOR, "2026-12-01T08:00:00+00:00", attributes),
                {"native_value": value, "native_unit_of_measurement": None},
            )
        ],
    )


async def test_last_event_restored_after_restart(
    hass: HomeAssistant, restored_last_event: None, init_integration: MockConfigEntry
) -> None:
    """Without an event since start, the sensor shows the one from before the restart."""
    state = hass.states.get(FRONT_SENSOR)
    assert state.state == "2026-12-01T08:00:00+00:00"
    assert state.attributes["event_id"] == "20261201-080000-000_doorbell"
    assert state.attributes["state"] == "complete"
    assert "path" not in state.attributes
    assert hass.states.get("sensor.garden_last_event").state == STATE_UNKNOWN


W, H, FPS, SECONDS = 320, 180, 15, 10


@pytest.fixture(scope="module")
def walker_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """People walking through a yard (the motion tests' positive scene)."""
    path = tmp_path_factory.mktemp("event_scenes") / "object.mp4"
    make_scene("object", path, W, H, FPS, SECONDS, seed=3)
    return path


@pytest.fixture
def motion_server(walker_scene: Path) -> Iterator[RtspServer]:
    """Two cameras on the same scene, each its own mount."""
    server = RtspServer({"/yard": f"file:{walker_scene}", "/porch": f"file:{walker_scene}"})
    server.start()
    yield server
    server.stop()


async def test_motion_opens_and_extends_an_event(
    hass: HomeAssistant,
    motion_server: RtspServer,
    storage_path: Path,
    hub_options: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With motion_events on, motion opens one event and extends it; off: no event."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        options=hub_options,
        subentries_data=[
            camera_subentry(
                "Yard",
                motion_server.url("/yard"),
                "yard",
                pre_seconds=2,
                post_seconds=2,
                **{CONF_MOTION_EVENTS: True, CONF_MOTION_OFF_DELAY: 1},
            ),
            camera_subentry("Porch", motion_server.url("/porch"), "porch"),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    capture = entry.runtime_data.capture
    assert capture is not None
    await wait_for(lambda: capture.last_event("yard") is not None, timeout=20)
    first = capture.last_event("yard")
    assert first is not None
    assert first.trigger == "motion"

    def sensor_shows_first() -> bool:
        state = hass.states.get("sensor.yard_last_event")
        return state is not None and state.attributes.get("event_id") == first.event_id

    # The sensor hears of the event through the dispatcher, a moment after the capture manager.
    await wait_for(sensor_shows_first, timeout=10)
    sensor = hass.states.get("sensor.yard_last_event")
    assert sensor.attributes["trigger"] == "motion"
    assert sensor.attributes["event_id"] == first.event_id
    folder = first.path
    await wait_for(
        lambda: (folder / "event.json").exists() and read_event(folder)["state"] == "complete", 40
    )
    doc = await hass.async_add_executor_job(read_event, folder)
    assert doc["trigger"] == "motion"
    assert doc["clips"]["yard"]
    requested = [datetime.fromisoformat(doc["requested"][k]).timestamp() for k in ("start", "end")]
    created = datetime.fromisoformat(doc["created"]).timestamp()
    assert requested[0] == pytest.approx(created - 2, abs=0.01)
    # Extended while the walkers kept moving: the window ends well past trigger + post.
    assert requested[1] > created + 2 + 1
    assert hass.states.get("binary_sensor.porch_motion") is not None
    assert capture.last_event("porch") is None
    # Motion reported while the capture manager is stopping is logged, not raised.
    await capture.stop()
    await asyncio.sleep(1.1)  # past the extend interval (half the 2-s post-roll)
    entry.runtime_data.cameras["sub_yard"].motion_listeners[0]()
    await wait_for(lambda: "Motion event of Yard not captured" in caplog.text, timeout=5)
    assert await hass.config_entries.async_unload(entry.entry_id)
