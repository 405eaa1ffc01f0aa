"""The review card's WebSocket commands against a running hub and its real recordings."""

from __future__ import annotations

from datetime import datetime, timedelta
from http import HTTPStatus
import io
import itertools
import logging
import threading
import time
from typing import Any
from unittest.mock import patch

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
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client_no_auth: ClientSessionGenerator,
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
    client = await hass_client_no_auth()
    picture = await client.get(events[0]["thumbnail"])  # signed: an <img> sends no header
    assert picture.status == HTTPStatus.OK
    assert cv2.imdecode(np.frombuffer(await picture.read(), np.uint8), cv2.IMREAD_COLOR) is not None

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


def decoded_frames(data: bytes) -> list[tuple[float, bool, NDArray[np.uint8]]]:
    """(seconds, keyframe, pixels) of every video frame of an MP4 held in memory."""
    with av.open(io.BytesIO(data)) as inp:
        return [
            (float(frame.time or 0.0), frame.key_frame, frame.to_ndarray(format="bgr24"))
            for frame in inp.decode(video=0)
        ]


async def test_playback_plays_from_the_moment_across_clips(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    """The URL plays from the keyframe at or before t (within one GOP), on through the next
    clips without a hole; a moment before any footage plays from the first recording."""
    index = init_integration.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 3, timeout=60)
    clips = index.clips("front-door")
    moment = clips[1].start + 1.3
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id(
        {"type": "pm_dvr/playback", "entity_id": "camera.front_door", "time": moment}
    )
    reply = await ws.receive_json()
    assert reply["success"], reply
    result = reply["result"]
    assert "authSig=" in result["url"]
    assert result["time"] == moment
    gop = 2.0  # the test camera's keyframe interval (rtsp rig)
    assert moment - gop <= result["start"] <= moment
    client = await hass_client()
    got = await client.get(result["url"])
    assert got.status == HTTPStatus.OK
    assert got.headers["Content-Type"] == "video/mp4"
    frames = await hass.async_add_executor_job(decoded_frames, await got.read())
    assert frames[0][1]  # begins on a keyframe

    def frame_of_clip(clip_index: int, offset: float) -> NDArray[np.uint8]:
        with av.open(str(clips[clip_index].path)) as inp:
            return [
                frame.to_ndarray(format="bgr24")
                for frame in inp.decode(video=0)
                if float(frame.time or 0.0) <= offset + 0.001
            ][-1]

    expected = await hass.async_add_executor_job(frame_of_clip, 1, result["start"] - clips[1].start)
    assert float(np.mean(cv2.absdiff(frames[0][2], expected))) < 1.0  # the same frame, copied
    times = [t for t, _, _ in frames]
    assert max(b - a for a, b in itertools.pairwise(times)) < 0.5  # no hole at the joins
    played_to = result["start"] + times[-1]
    assert played_to >= clips[-1].end - 1.0  # through every later clip indexed then

    await ws.send_json_auto_id(
        {"type": "pm_dvr/playback", "entity_id": "camera.front_door", "time": clips[0].start - 600}
    )
    early = await ws.receive_json()
    assert early["result"]["start"] == pytest.approx(clips[0].start, abs=0.01)


@pytest.mark.usefixtures("init_integration")
async def test_playback_refuses_what_it_cannot_play(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    """No footage after the moment, a camera that is not pm_dvr's, a bad time: translated
    refusals; a bad name in the URL: 404."""
    ws = await hass_ws_client(hass)
    cases = [
        ({"entity_id": "camera.front_door", "time": time.time() + 7200}, "no_footage"),
        ({"entity_id": "camera.nobody", "time": time.time()}, "unknown_camera_entity"),
    ]
    for fields, key in cases:
        await ws.send_json_auto_id({"type": "pm_dvr/playback", **fields})
        refused = await ws.receive_json()
        assert not refused["success"]
        assert refused["error"]["translation_key"] == key
    await ws.send_json_auto_id(
        {"type": "pm_dvr/playback", "entity_id": "camera.front_door", "time": "soon"}
    )
    invalid = await ws.receive_json()
    assert invalid["error"]["code"] == "invalid_format"
    client = await hass_client()
    base = f"/api/{DOMAIN}/media/{init_integration.entry_id}/play"
    for name in ("front-door/soon.mp4", "front-door/123.jpg", "../x/123.mp4", "front-door/5.mp4"):
        assert (await client.get(f"{base}/{name}")).status == HTTPStatus.NOT_FOUND


async def test_playback_ends_when_the_viewer_goes_and_is_bounded(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    """A viewer that stops reading ends its join (its slot is free again); over MAX_PLAYBACKS
    joins at once, the next is told 503."""
    index = init_integration.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 2, timeout=60)
    clip = index.clips("front-door")[0]
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id(
        {"type": "pm_dvr/playback", "entity_id": "camera.front_door", "time": clip.start}
    )
    url = (await ws.receive_json())["result"]["url"]

    def joins() -> int:
        return sum(thread.name == "pm_dvr playback" for thread in threading.enumerate())

    with patch("custom_components.pm_dvr.playback.QUEUED_PIECES", 1):
        client = await hass_client()
        got = await client.get(url)
        assert got.status == HTTPStatus.OK
        await got.content.readany()
        assert joins() == 1
        got.close()  # the viewer goes while the join waits on its full queue
        await wait_for(lambda: joins() == 0, timeout=10)
    with patch("custom_components.pm_dvr.playback.MAX_PLAYBACKS", 0):
        assert (await client.get(url)).status == HTTPStatus.SERVICE_UNAVAILABLE
