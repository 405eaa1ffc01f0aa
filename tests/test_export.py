"""pm_dvr.export against a running hub and its real recordings: one MP4 of a range of time."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
import io
import itertools
from pathlib import Path
import time

import av
from homeassistant.components.media_source import async_browse_media, async_resolve_media
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.pm_dvr.const import DOMAIN

from .common import wait_for
from .test_services import open_transports

ROOT = f"media-source://{DOMAIN}"


def frame_times(data: bytes) -> list[float]:
    """The presentation times of every decoded video frame, in seconds."""
    with av.open(io.BytesIO(data)) as inp:
        return [float(frame.time or 0.0) for frame in inp.decode(inp.streams.video[0])]


async def test_export_joins_the_range_into_one_video(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """Three clips' worth of footage in one file that plays through, listed under Exports and
    served to the signed URL the answer gives."""
    assert await async_setup_component(hass, "media_source", {})
    entry = init_integration
    index = entry.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 4, timeout=40)
    clips = index.clips("front-door")
    start, end = clips[0].start + 0.5, clips[2].end - 0.5
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {
            ATTR_ENTITY_ID: "camera.front_door",
            "start": datetime.fromtimestamp(start).astimezone().isoformat(),
            "end": end,
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    path = Path(str(response["path"]))
    assert path.parent == entry.runtime_data.storage / "exports" / "front-door"
    assert response["bytes"] == path.stat().st_size
    data = path.read_bytes()
    times = frame_times(data)
    # It starts on the keyframe at or before the start (the test camera has one a second) and
    # plays without a hole to the end.
    length = times[-1] - times[0]
    assert end - start - 0.2 <= length <= end - start + 1.2
    assert max(b - a for a, b in itertools.pairwise(times)) < 0.2

    client = await hass_client()
    got = await client.get(str(response["url"]))
    assert got.status == HTTPStatus.OK, got.reason
    assert await got.read() == data

    root = await async_browse_media(hass, ROOT)
    exports = await async_browse_media(hass, root.children[2].media_content_id)
    assert exports.title == "Exports"
    assert [child.media_content_id for child in exports.children] == [response["media_content_id"]]
    assert exports.children[0].title.startswith("Front door ")
    play = await async_resolve_media(hass, str(response["media_content_id"]), None)
    assert "authSig=" in play.url
    assert await (await client.get(play.url)).read() == data

    # A second export of the same range gets a name of its own; both are listed, newest first.
    again = await hass.services.async_call(
        DOMAIN,
        "export",
        {ATTR_ENTITY_ID: "camera.front_door", "start": start, "end": end},
        blocking=True,
        return_response=True,
    )
    assert again is not None
    assert again["path"] != response["path"]
    listed = await async_browse_media(hass, exports.media_content_id)
    assert len(listed.children) == 2


async def test_export_refuses_bad_input_on_every_transport(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bad ranges, times and cameras are translated validation errors (REST: 400), and a range
    with no footage is one too; nothing is written."""
    call = await open_transports(hass, hass_client, hass_ws_client, caplog)
    now = time.time()
    camera = {ATTR_ENTITY_ID: "camera.front_door"}
    await call.refused("export", {**camera, "start": now, "end": now - 5}, "invalid_export_range")
    await call.refused(
        "export", {**camera, "start": now, "end": now + 7 * 3600}, "invalid_export_range"
    )
    await call.refused("export", {**camera, "start": "yesterday", "end": now}, "invalid_time")
    await call.refused(
        "export",
        {ATTR_ENTITY_ID: ["camera.front_door", "camera.garden"], "start": 0, "end": 5},
        "one_camera",
    )
    await call.refused(
        "export", {ATTR_ENTITY_ID: "camera.nobody", "start": 0, "end": 5}, "unknown_camera_entity"
    )
    await call.refused("export", {**camera, "start": 1000, "end": 1060}, "no_footage")
    exports = init_integration.runtime_data.storage / "exports"
    assert not list(exports.rglob("*.mp4"))
