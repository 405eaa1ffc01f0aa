"""The review card's WebSocket commands against a running hub and its real recordings."""

from __future__ import annotations

from datetime import datetime, timedelta
from http import HTTPStatus
import itertools
import logging
import time
from typing import Any

import av
import cv2
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import numpy as np
from numpy.typing import NDArray
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.pm_dvr.const import DOMAIN
from custom_components.pm_dvr.core.motion import MotionResult

from .common import wait_for


async def timeline(ws: Any, **fields: Any) -> dict[str, Any]:
    await ws.send_json_auto_id({"type": "pm_dvr/timeline", **fields})
    reply: dict[str, Any] = await ws.receive_json()
    return reply


async def test_timeline_shows_the_recordings_and_the_events(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """The recorded spans cover every clip on disk of the window and nothing outside it; the
    camera's events are listed with their labels, another camera's are not."""
    index = init_integration.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 3, timeout=30)
    response = await hass.services.async_call(
        DOMAIN,
        "capture_event",
        {
            ATTR_ENTITY_ID: ["camera.front_door"],
            "pre_seconds": 4,
            "post_seconds": 0,
            "label": "Gate",
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    clips = index.clips("front-door")
    start, end = clips[0].start - 60, time.time() + 60
    ws = await hass_ws_client(hass)

    reply = await timeline(ws, entity_id="camera.front_door", start=start, end=end)
    assert reply["success"], reply
    result = reply["result"]
    spans = result["recordings"]
    assert spans
    assert all(s0 < e0 < s1 for (s0, e0), (s1, _) in itertools.pairwise(spans))
    for clip in clips:  # every clip lies inside a span
        assert any(s - 1e-6 <= clip.start and clip.end <= e + 1e-6 for s, e in spans), clip
    assert spans[0][0] == pytest.approx(clips[0].start)
    events = result["events"]
    assert [(e["id"], e["label"]) for e in events] == [(response["event_id"], "Gate")]

    # The same window as ISO times; the other camera has recordings but not this event.
    iso = {
        "start": datetime.fromtimestamp(start).astimezone().isoformat(),
        "end": datetime.fromtimestamp(end).astimezone().isoformat(),
    }
    again = await timeline(ws, entity_id="camera.front_door", **iso)
    assert again["result"]["recordings"][0][0] == pytest.approx(spans[0][0])
    garden = await timeline(ws, entity_id="camera.garden", **iso)
    assert garden["result"]["recordings"]
    assert garden["result"]["events"] == []

    # A window before any recording: nothing, and no error.
    empty = await timeline(ws, entity_id="camera.front_door", start=start - 7200, end=start - 3600)
    assert empty["result"]["recordings"] == []
    assert empty["result"]["events"] == []


@pytest.mark.parametrize(
    ("fields", "translation_key"),
    [
        ({"entity_id": "camera.nobody", "start": 0, "end": 10}, "unknown_camera_entity"),
        (
            {"entity_id": "sensor.front_door_storage", "start": 0, "end": 10},
            "unknown_camera_entity",
        ),
        ({"entity_id": "camera.front_door", "start": 10, "end": 10}, "invalid_range"),
        ({"entity_id": "camera.front_door", "start": 10, "end": 5}, "invalid_range"),
        ({"entity_id": "camera.front_door", "start": 0, "end": 93 * 86400}, "invalid_range"),
        ({"entity_id": "camera.front_door", "start": "yesterday", "end": 10}, None),
        ({"entity_id": "camera.front_door", "start": True, "end": 10}, None),
        ({"entity_id": "camera.front_door", "start": 1e300, "end": 10}, "invalid_range"),
        ({"entity_id": [], "start": 0, "end": 10}, None),
        ({"start": 0, "end": 10}, None),
    ],
)
@pytest.mark.usefixtures("init_integration")
async def test_timeline_refuses_bad_input_clearly(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, Any],
    translation_key: str | None,
) -> None:
    """Bad input gets an invalid_format error with a message (translated where pm_dvr checks
    it), never an unknown error, a traceback or an error logged by pm_dvr (HA itself logs a
    schema's refusal)."""
    ws = await hass_ws_client(hass)
    reply = await timeline(ws, **fields)
    assert not reply["success"]
    error = reply["error"]
    assert error["code"] == "invalid_format"
    assert error["message"]
    if translation_key is not None:
        assert error["translation_key"] == translation_key
        assert error["translation_domain"] == DOMAIN
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "pm_dvr" in r.name]


async def test_thumbnail_is_the_keyframe_at_that_moment(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    """A signed URL of a 320-px JPEG of the keyframe at or before the moment, 404 where nothing
    was recorded; a camera that is not pm_dvr's is refused with a translated error."""
    index = init_integration.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 2, timeout=30)
    clip = index.clips("front-door")[0]
    moment = clip.start + 1.3
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id(
        {"type": "pm_dvr/thumbnail", "entity_id": "camera.front_door", "time": moment}
    )
    reply = await ws.receive_json()
    assert reply["success"], reply
    url = reply["result"]["url"]
    assert "authSig=" in url
    client = await hass_client()
    got = await client.get(url)
    assert got.status == HTTPStatus.OK
    assert got.headers["Content-Type"] == "image/jpeg"
    still = cv2.imdecode(np.frombuffer(await got.read(), np.uint8), cv2.IMREAD_COLOR)
    assert still.shape[1] == 320

    def keyframe_before(offset: float) -> NDArray[np.uint8]:
        with av.open(str(clip.path)) as inp:
            keyframes = [
                frame.to_ndarray(format="bgr24")
                for frame in inp.decode(video=0)
                if frame.key_frame and float(frame.time or 0.0) <= offset
            ]
        return keyframes[-1]

    expected = await hass.async_add_executor_job(keyframe_before, 1.3)
    expected = cv2.resize(expected, (still.shape[1], still.shape[0]), interpolation=cv2.INTER_AREA)
    assert float(np.mean(cv2.absdiff(still, expected))) < 4.0  # JPEG's loss, nothing more

    await ws.send_json_auto_id(
        {"type": "pm_dvr/thumbnail", "entity_id": "camera.front_door", "time": clip.start - 3600}
    )
    nothing = await ws.receive_json()
    assert (await client.get(nothing["result"]["url"])).status == HTTPStatus.NOT_FOUND
    base = f"/api/{DOMAIN}/media/{init_integration.entry_id}/frame"
    for name in ("front-door/soon.jpg", "front-door/123.png", "../x/123.jpg"):
        assert (await client.get(f"{base}/{name}")).status == HTTPStatus.NOT_FOUND

    await ws.send_json_auto_id(
        {"type": "pm_dvr/thumbnail", "entity_id": "camera.nobody", "time": moment}
    )
    refused = await ws.receive_json()
    assert not refused["success"]
    assert refused["error"]["translation_key"] == "unknown_camera_entity"


async def test_timeline_shows_the_motion_intervals(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """Motion from its first moving frame to its last is logged when it ends (and when the
    camera stops while it is on), and the timeline lists it."""
    coordinator = init_integration.runtime_data.cameras["sub_front-door"]
    assert coordinator.motion_enabled
    moving = MotionResult(True, ((0.1, 0.1, 0.2, 0.2),), 0.01)
    before = time.time()
    coordinator._async_on_motion(moving, 0.04, None)
    coordinator._async_on_motion(moving, 0.04, None)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))  # off delay over
    await hass.async_block_till_done()
    assert not coordinator.motion.detected
    after = time.time()
    coordinator._async_on_motion(moving, 0.04, None)  # on again, then the hub unloads
    await hass.async_block_till_done()
    ws = await hass_ws_client(hass)
    reply = await timeline(ws, entity_id="camera.front_door", start=before - 60, end=after + 60)
    assert reply["success"], reply
    [(start, end)] = reply["result"]["motion"]
    assert before <= start <= end <= after
    garden = await timeline(ws, entity_id="camera.garden", start=before - 60, end=after + 60)
    assert garden["result"]["motion"] == []

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    logged = await hass.async_add_executor_job(
        coordinator.motion_log.between, before - 60, time.time() + 60
    )
    assert len(logged) == 2
    assert logged[1][0] >= after
