"""Live view in HA: the endpoint, its auth, HA's own stream reading it, and one camera
connection whatever watches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
import io
from typing import Any
from unittest.mock import patch

import av
from homeassistant.components.camera import async_get_image, async_get_stream_source
from homeassistant.components.camera.const import DATA_COMPONENT
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .common import wait_for
from .conftest import camera_subentry, hub_like
from .rig.rtsp import RtspServer

LIVE = "/api/pm_dvr/live/{}"


def ts_info(data: bytes) -> tuple[list[str], bool, int, tuple[int, int]]:
    """Codecs, whether the first video packet is a keyframe, frames, and the picture size."""
    with av.open(io.BytesIO(data), format="mpegts") as container:
        codecs = [s.codec_context.name for s in container.streams]
        packets = [p for p in container.demux(video=0) if p.size]
    with av.open(io.BytesIO(data), format="mpegts") as container:
        frames = list(container.decode(video=0))
    return codecs, packets[0].is_keyframe, len(frames), (frames[0].width, frames[0].height)


async def read_live(client: Any, url: str, size: int = 60_000) -> bytes:
    """Open the live URL, read at least `size` bytes, and close."""
    response = await client.get(url)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "video/mp2t"
    data = bytearray()
    async for chunk in response.content.iter_any():
        data.extend(chunk)
        if len(data) >= size:
            break
    response.close()
    return bytes(data)


@pytest.fixture
async def private_entry(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, rtsp_private: RtspServer
) -> AsyncGenerator[MockConfigEntry]:
    """A hub whose one camera is on the test's own RTSP server (counted clients)."""
    entry = hub_like(
        mock_config_entry, "private", [camera_subentry("Drive", rtsp_private.url("/cam"), "drive")]
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: entry.runtime_data.cameras["sub_drive"].session.available)
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("expected_lingering_timers", [True])  # HA stream's idle timer
async def test_one_camera_connection_for_everything(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    private_entry: MockConfigEntry,
    rtsp_private: RtspServer,
) -> None:
    """Recording, motion, snapshots, HA's own HLS stream and three viewers: one connection."""
    assert await async_setup_component(hass, "stream", {})
    client = await hass_client()
    await hass.config.async_update(internal_url=str(client.make_url("")).rstrip("/"))
    assert (await async_get_image(hass, "camera.drive")).content
    camera = hass.data[DATA_COMPONENT].get_entity("camera.drive")
    assert camera is not None
    stream = await camera.async_create_stream()
    assert stream is not None
    hls = stream.add_provider("hls")
    await stream.start()
    try:
        viewers = await asyncio.gather(
            *(read_live(client, LIVE.format("drive"), 30_000) for _ in range(3))
        )
        for data in viewers:
            codecs, keyframe_first, frames, size = ts_info(data)
            assert codecs == ["h264"]
            assert keyframe_first
            assert frames > 10
            assert size == (320, 180)
        # HA's stream worker read pm_dvr's endpoint and made HLS segments of it.
        await wait_for(lambda: hls.last_segment is not None, timeout=30)
        assert (await async_get_image(hass, "camera.drive", width=160)).content
        assert hass.states.get("camera.drive").state == "recording"
    finally:
        await stream.stop()
    await wait_for(lambda: not private_entry.runtime_data.cameras["sub_drive"].watching)
    # Three viewers and HA's stream worker were served from the session.
    assert private_entry.runtime_data.cameras["sub_drive"].live.served == 4
    assert rtsp_private.connections == 1
    assert rtsp_private.max_clients == 1
    assert rtsp_private.clients == 1


async def test_stream_source_is_the_live_endpoint(
    hass: HomeAssistant, init_integration: MockConfigEntry, rtsp_server: RtspServer
) -> None:
    """HA's stream gets pm_dvr's endpoint with the camera's token, never the camera URL."""
    source = await async_get_stream_source(hass, "camera.front_door")
    assert source is not None
    coordinator = init_integration.runtime_data.cameras["sub_front-door"]
    assert source.endswith(f"/api/pm_dvr/live/front-door?token={coordinator.live_token}")
    assert source.startswith("http://")
    assert "rtsp" not in source
    await hass.config.async_update(internal_url="http://ha.local:8123")
    source = await async_get_stream_source(hass, "camera.front_door")
    assert source is not None
    assert source.startswith("http://ha.local:8123/api/pm_dvr/live/front-door?token=")


async def test_live_auth(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_access_token: str,
    init_integration: MockConfigEntry,
) -> None:
    """Without auth 401; the camera's token, a long-lived token in the query, or a bearer
    token each open it."""
    client = await hass_client_no_auth()
    url = LIVE.format("front-door")
    assert (await client.get(url)).status == 401
    assert (await client.get(url, params={"token": "wrong"})).status == 401
    assert (await client.get(url, params={"access_token": "wrong"})).status == 401
    assert (await client.get(LIVE.format("nope"), params={"token": "x"})).status == 401
    token = init_integration.runtime_data.cameras["sub_front-door"].live_token
    assert (await client.get(LIVE.format("garden"), params={"token": token})).status == 401
    data = await read_live(client, f"{url}?token={token}")
    assert ts_info(data)[1]
    data = await read_live(client, f"{url}?access_token={hass_access_token}")
    assert ts_info(data)[1]
    bearer = {"Authorization": f"Bearer {hass_access_token}"}
    response = await client.get(url, headers=bearer)
    assert response.status == 200
    response.close()


async def test_live_errors(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, init_integration: MockConfigEntry
) -> None:
    """An unknown camera or stream is 404 (a clear reason, never a 500)."""
    client = await hass_client()
    for name in ("front_door", "camera.front_door"):  # the entity id works as well as the id
        data = await read_live(client, LIVE.format(name), 20_000)
        assert ts_info(data)[1]
    response = await client.get(LIVE.format("nope"))
    assert response.status == 404
    assert "No such camera" in await response.text()
    for stream in ("sub", "bogus"):
        response = await client.get(LIVE.format("front-door"), params={"stream": stream})
        assert response.status == 404
        assert "No such stream" in await response.text()


async def test_unload_ends_live_streams_cleanly(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, init_integration: MockConfigEntry
) -> None:
    """Unloading the hub ends each live stream with a proper end, not a broken connection."""
    client = await hass_client()
    response = await client.get(LIVE.format("front-door"))
    assert response.status == 200
    first = await response.content.readany()
    assert first
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    rest = await asyncio.wait_for(response.content.read(), 20)  # to the end of the stream
    assert ts_info(first + rest)[1]
    response.close()


async def test_too_many_viewers_and_no_internal_url(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, init_integration: MockConfigEntry
) -> None:
    """Past the viewer limit: 503. Without any URL of HA's own, the source is on loopback."""
    client = await hass_client()
    with patch("custom_components.pm_dvr.views.MAX_VIEWERS", 0):
        response = await client.get(LIVE.format("front-door"))
    assert response.status == 503
    assert "Too many live viewers" in await response.text()
    with patch("custom_components.pm_dvr.views.get_url", side_effect=NoURLAvailableError):
        source = await async_get_stream_source(hass, "camera.front_door")
    assert source is not None
    assert source.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    "camera_subentries",
    [[camera_subentry("Watch", "rtsp://127.0.0.1:1/never", "watch", record=False)]],
)
async def test_camera_down_is_503(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mock_config_entry: MockConfigEntry,
) -> None:
    """A camera that is not streaming answers 503, so players retry later."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    client = await hass_client()
    response = await client.get(LIVE.format("watch"))
    assert response.status == 503
    assert hass.states.get("camera.watch").state == "unavailable"
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


@pytest.fixture
def sub_stream_subentries(rtsp_server: RtspServer) -> list[Any]:
    return [
        camera_subentry(
            "Porch",
            rtsp_server.url("/cam"),
            "porch",
            record=False,
            detect_stream_url=rtsp_server.url("/cam2"),
        )
    ]


@pytest.mark.parametrize("camera_subentries", [pytest.param(None, id="sub-stream")])
async def test_sub_stream_live_and_camera_states(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mock_config_entry: MockConfigEntry,
    rtsp_server: RtspServer,
    sub_stream_subentries: list[Any],
) -> None:
    """The sub-stream is a live source too; the camera is idle, streaming while watched, and
    its motion detection follows the Motion switch both ways."""
    entry = hub_like(mock_config_entry, "porch", sub_stream_subentries)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data.cameras["sub_porch"]
    await wait_for(lambda: coordinator.session.available and coordinator.detect_session.available)
    client = await hass_client()
    main = await read_live(client, LIVE.format("porch"))
    assert ts_info(main)[3] == (640, 360)
    sub = await read_live(client, LIVE.format("porch") + "?stream=sub", 20_000)
    assert ts_info(sub)[3] == (320, 180)
    await wait_for(lambda: hass.states.get("camera.porch").state == "idle")
    response = await client.get(LIVE.format("porch"))
    await wait_for(lambda: hass.states.get("camera.porch").state == "streaming")
    response.close()
    await wait_for(lambda: hass.states.get("camera.porch").state == "idle")
    assert hass.states.get("camera.porch").attributes["motion_detection"] is True
    await hass.services.async_call(
        "camera", "disable_motion_detection", {ATTR_ENTITY_ID: "camera.porch"}, blocking=True
    )
    assert hass.states.get("switch.porch_motion_detection").state == "off"
    assert hass.states.get("camera.porch").attributes.get("motion_detection") is not True
    await hass.services.async_call(
        "camera", "enable_motion_detection", {ATTR_ENTITY_ID: "camera.porch"}, blocking=True
    )
    assert hass.states.get("switch.porch_motion_detection").state == "on"
    assert await hass.config_entries.async_unload(entry.entry_id)
