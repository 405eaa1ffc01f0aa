"""pm_dvr.capture_event: clips around now hard-linked into an event folder."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pm_dvr.const import DOMAIN, EVENT_PM_DVR

from .common import wait_for


def read_event(folder: Path) -> dict:
    return json.loads((folder / "event.json").read_text())


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
    await hass.async_block_till_done()
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
