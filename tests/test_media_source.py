"""The media browser through HA's media_source API: structure, paging, playback, refusals."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import datetime
from http import HTTPStatus
import io
import json
import os
from pathlib import Path
import shutil
import time

import av
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    URI_SCHEME,
    BrowseMediaSource,
    Unresolvable,
    async_browse_media,
    async_resolve_media,
)
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pm_dvr.const import CONF_STORAGE_PATH, DOMAIN
from custom_components.pm_dvr.core.layout import clip_path
from custom_components.pm_dvr.media_source import PAGE_SIZE

from .common import wait_for
from .rig.clipfiles import make_clip

ROOT = f"{URI_SCHEME}{DOMAIN}"


def decoded_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as inp:
        return sum(1 for _ in inp.decode(inp.streams.video[0]))


def plant_clips(storage: Path, camera: str, starts: list[float], seconds: float = 10.0) -> None:
    """Copies of one real clip under the recorder's names, each dated by its mtime."""
    source = storage / "source.mp4"
    make_clip(source)
    for start in starts:
        path = clip_path(storage, camera, start)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        os.utime(path, (start + seconds, start + seconds))
    source.unlink()


def plant_events(storage: Path, count: int) -> None:
    """event.json documents as core/capture.py writes them, one a minute."""
    for i in range(count):
        start = time.mktime((2025, 3, 1, 9, 50 + i, 0, 0, 0, -1))
        local = time.localtime(start)
        event_id = time.strftime("%Y%m%d-%H%M%S", local) + f"-000_visitor-{i}"
        folder = storage / "events" / event_id
        (folder / "porch").mkdir(parents=True)
        doc = {
            "id": event_id,
            "label": f"Visitor {i}",
            "trigger": "service",
            "cameras": ["porch"],
            "requested": {
                "start": datetime.fromtimestamp(start).astimezone().isoformat(),
                "end": datetime.fromtimestamp(start + 3900).astimezone().isoformat(),
            },
            "clips": {"porch": [{"name": "20250301-095000.mp4"}] if i == 0 else []},
            "state": "recording" if i == count - 2 else "complete",
        }
        (folder / "event.json").write_text(json.dumps(doc))


def ids(node: BrowseMediaSource) -> list[str]:
    assert node.children is not None
    return [child.media_content_id for child in node.children]


def titles(node: BrowseMediaSource) -> list[str]:
    assert node.children is not None
    return [child.title for child in node.children]


@pytest.fixture
async def media(hass: HomeAssistant) -> None:
    """HA's media_source integration, which finds pm_dvr's platform."""
    assert await async_setup_component(hass, "media_source", {})


async def test_browse_play_and_refuse(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    media: None,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Live footage: an event and the recordings browse, resolve, download and decode."""
    entry = init_integration
    index = entry.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 3, timeout=30)
    response = await hass.services.async_call(
        DOMAIN,
        "capture_event",
        {
            ATTR_ENTITY_ID: ["camera.front_door"],
            "pre_seconds": 4,
            "post_seconds": 0,
            "label": "Doorbell",
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    event_id = str(response["event_id"])

    root = await async_browse_media(hass, ROOT)
    assert titles(root) == ["Events", "Recordings", "Exports"]
    events = await async_browse_media(hass, ids(root)[0])
    assert events.children
    first = events.children[0]
    assert first.media_content_id == f"{ROOT}/{entry.entry_id}/event/{event_id}"
    assert "Doorbell" in first.title
    assert "Front door" in first.title
    client = await hass_client()
    assert first.thumbnail
    thumb = await client.get(first.thumbnail)
    assert thumb.status == HTTPStatus.OK
    assert (await thumb.read())[:2] == b"\xff\xd8"

    event = await async_browse_media(hass, first.media_content_id)
    assert event.children
    assert event.children[0].title.startswith("Front door")
    play = await async_resolve_media(hass, event.children[0].media_content_id, None)
    assert play.mime_type == "video/mp4"
    assert "authSig=" in play.url
    video = await client.get(play.url)
    assert video.status == HTTPStatus.OK
    linked = len(list((entry.runtime_data.storage / "events" / event_id / "front-door").iterdir()))
    # One video of the event's clips back to back: more frames than any single 2-s clip.
    frames = decoded_frames(await video.read())
    assert frames > 50 * (linked - 1)

    recordings = await async_browse_media(hass, ids(root)[1])
    assert titles(recordings) == ["Front door", "Garden"]
    days = await async_browse_media(hass, ids(recordings)[0])
    today = time.strftime("%Y-%m-%d", time.localtime(index.clips("front-door")[-1].start))
    assert titles(days)[0].startswith(today)
    hours = await async_browse_media(hass, ids(days)[0])
    clips = await async_browse_media(hass, ids(hours)[0])
    assert clips.children
    assert all(child.can_play for child in clips.children)
    clip = await async_resolve_media(hass, ids(clips)[0], None)
    got = await client.get(clip.url)
    assert got.status == HTTPStatus.OK
    assert decoded_frames(await got.read()) > 0

    # The view wants authentication: an unsigned URL without a token is refused.
    unsigned = clip.url.split("?")[0]
    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(unsigned)).status == HTTPStatus.UNAUTHORIZED
    assert (await anonymous.get(first.thumbnail)).status == HTTPStatus.UNAUTHORIZED
    assert (await client.get(unsigned)).status == HTTPStatus.OK


@pytest.mark.parametrize(
    "identifier",
    [
        "clip/front-door/..",
        "clip/../20260101-000000.mp4",
        "clip/front-door/../../../etc/passwd",
        "clip/front-door/%2e%2e",
        "clip//etc/passwd",
        "clip/front-door/20260101-000000.mp4",
        "event/../front-door",
        "event/20260101-000000-000_x/..",
        "event/20260101-000000-000_x/front-door",
        "rec/front-door",
        "nothing/a/b",
    ],
)
async def test_crafted_identifiers_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry, media: None, identifier: str
) -> None:
    """Anything but an indexed clip or an event's camera is unresolvable."""
    with pytest.raises(Unresolvable):
        await async_resolve_media(hass, f"{ROOT}/{init_integration.entry_id}/{identifier}", None)


@pytest.mark.parametrize(
    "identifier",
    [
        "rec/..",
        "rec/front-door/..",
        "rec/front-door/2026-13-45",
        "rec/front-door/2026-01-01/24",
        "rec/front-door/2026-01-01/../..",
        "event/..",
        "event/20260101-000000-000_nothing",
        "events/p0",
        "events/p9",
        "elsewhere",
    ],
)
async def test_crafted_browse_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry, media: None, identifier: str
) -> None:
    """Browsing outside the known levels is a browse error, never a directory listing."""
    with pytest.raises(BrowseError):
        await async_browse_media(hass, f"{ROOT}/{init_integration.entry_id}/{identifier}")


async def test_view_refuses_paths_outside(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    media: None,
    hass_client: ClientSessionGenerator,
) -> None:
    """Even an authenticated user is refused traversal (HA's filter: 400) and unknown kinds."""
    client = await hass_client()
    base = f"/api/pm_dvr/media/{init_integration.entry_id}"
    for path in (
        f"{base}/clip/front-door/..%2F..%2F..%2Fetc%2Fpasswd",
        f"{base}/clip/%2E%2E/20260101-000000.mp4",
        f"{base}/event/..%2F..%2Frecordings/front-door.mp4",
        f"{base}/event/20260101-000000-000_x/front-door.mp4",
        f"{base}/thumbnail/20260101-000000-000_x/thumbnail.jpg",
        f"{base}/other/a/b",
        "/api/pm_dvr/media/not-an-entry/clip/front-door/20260101-000000.mp4",
    ):
        status = (await client.get(path)).status
        assert status in {HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND}, path


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_paging_a_year(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    storage_path: Path,
    media: None,
) -> None:
    """150 days and an hour of 250 clips list page by page, newest day first."""
    base = time.mktime((2025, 3, 1, 0, 0, 0, 0, 0, -1))
    day_starts = [time.mktime((2025, 3, 1 + d, 12, 0, 0, 0, 0, -1)) for d in range(150)]
    busy_hour = time.mktime((2025, 7, 20, 8, 0, 0, 0, 0, -1))
    busy = [busy_hour + 14 * i for i in range(250)]
    await hass.async_add_executor_job(
        plant_clips, storage_path, "porch", sorted({*day_starts, *busy})
    )
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    entry_id = mock_config_entry.entry_id

    cameras = await async_browse_media(hass, f"{ROOT}/{entry_id}/rec")
    assert titles(cameras) == ["porch"]  # a camera removed since keeps its footage, by slug
    page1 = await async_browse_media(hass, ids(cameras)[0])
    assert len(page1.children or []) == PAGE_SIZE + 1
    assert titles(page1)[0].startswith(time.strftime("%Y-%m-%d", time.localtime(day_starts[-1])))
    assert titles(page1)[-1] == "More (50)"
    page2 = await async_browse_media(hass, ids(page1)[-1])
    assert len(page2.children or []) == 50
    assert titles(page2)[-1].startswith(time.strftime("%Y-%m-%d", time.localtime(base)))

    day = f"{ROOT}/{entry_id}/rec/porch/2025-07-20"
    hours = await async_browse_media(hass, day)
    assert titles(hours) == ["12:00 (1 clips)", "08:00 (250 clips)"]
    clips = await async_browse_media(hass, ids(hours)[1])
    assert len(clips.children or []) == PAGE_SIZE + 1
    assert titles(clips)[0] == "08:00:00 (10 s)"
    last = await async_browse_media(hass, f"{day}/08/p3")
    assert len(last.children or []) == 50
    assert last.children
    assert last.children[-1].can_play

    events = await async_browse_media(hass, f"{ROOT}/{entry_id}/events")
    assert events.children == []
    await hass.async_add_executor_job(plant_events, storage_path, 130)
    events = await async_browse_media(hass, f"{ROOT}/{entry_id}/events")
    assert len(events.children or []) == PAGE_SIZE + 1
    assert titles(events)[0] == "2025-03-01 11:59:00 · Visitor 129 · porch"  # newest first
    assert titles(events)[1] == "2025-03-01 11:58:00 · Visitor 128 · porch (recording)"
    assert events.children is not None
    assert events.children[0].thumbnail is None  # no footage: no picture
    older = await async_browse_media(hass, ids(events)[-1])
    assert len(older.children or []) == 30
    assert titles(older)[-1].startswith("2025-03-01 09:50:00 · Visitor 0")
    event = await async_browse_media(hass, ids(older)[-1])
    assert titles(event) == ["porch (1 h 05 min)"]
    assert await hass.config_entries.async_unload(entry_id)


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time with a DST change (Europe/Berlin: 25 Oct 2026, 03:00 back to 02:00)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("camera_subentries", [[]])
@pytest.mark.usefixtures("media", "berlin")
async def test_repeated_hour_lists_both_passes(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    storage_path: Path,
    hass_client: ClientSessionGenerator,
) -> None:
    """The hour the clocks go back through is one hour with both passes in time order, each
    clip titled with its UTC offset and playable, a name from before offset markers too."""
    change = calendar.timegm((2026, 10, 25, 1, 0, 0))  # 03:00 CEST becomes 02:00 CET
    starts = [change - 1800, change + 1800, change + 2400]
    await hass.async_add_executor_job(plant_clips, storage_path, "porch", starts)
    day = storage_path / "recordings" / "porch" / "2026-10-25"
    names = sorted(p.name for p in day.iterdir())
    assert names == [
        "20261025-023000_p0100.mp4",
        "20261025-023000_p0200.mp4",
        "20261025-024000_p0100.mp4",
    ]
    (day / names[2]).rename(day / "20261025-024000.mp4")  # as versions before markers named it
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    entry_id = mock_config_entry.entry_id

    hours = await async_browse_media(hass, f"{ROOT}/{entry_id}/rec/porch/2026-10-25")
    assert titles(hours) == ["02:00 (3 clips)"]
    clips = await async_browse_media(hass, ids(hours)[0])
    assert titles(clips) == [
        "02:30:00 +02:00 (10 s)",
        "02:30:00 +01:00 (10 s)",
        "02:40:00 +01:00 (10 s)",
    ]
    assert ids(clips)[0].endswith("/clip/porch/20261025-023000_p0200.mp4")
    assert ids(clips)[2].endswith("/clip/porch/20261025-024000.mp4")
    client = await hass_client()
    for identifier in ids(clips):
        play = await async_resolve_media(hass, identifier, None)
        got = await client.get(play.url)
        assert got.status == HTTPStatus.OK, identifier
    assert await hass.config_entries.async_unload(entry_id)


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_two_hubs_at_the_root(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, tmp_path: Path, media: None
) -> None:
    """With two hubs, the root lists each hub; an unloaded hub is not browsable."""
    second = MockConfigEntry(
        domain=DOMAIN,
        title="second",
        unique_id="second",
        data={CONF_STORAGE_PATH: str(tmp_path / "second")},
        options=mock_config_entry.options,
    )
    for entry in (mock_config_entry, second):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    root = await async_browse_media(hass, ROOT)
    assert sorted(ids(root)) == sorted(
        f"{ROOT}/{entry.entry_id}" for entry in (mock_config_entry, second)
    )
    hub = await async_browse_media(hass, ids(root)[0])
    assert titles(hub) == ["Events", "Recordings", "Exports"]
    assert await hass.config_entries.async_unload(second.entry_id)
    with pytest.raises(BrowseError):
        await async_browse_media(hass, f"{ROOT}/{second.entry_id}")
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
