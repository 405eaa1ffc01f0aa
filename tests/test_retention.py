"""Retention through HA: quotas, ages, events, the emergency floor on a real small disk, the
`pm_dvr.cleanup` service, the Clean up now button and the storage sensors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
import json
import os
from pathlib import Path
import shutil
import subprocess
import threading
import time
from typing import Any

from homeassistant.components.button import SERVICE_PRESS
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.pm_dvr.const import (
    CONF_MAX_AGE_DAYS,
    CONF_MAX_EVENT_AGE_DAYS,
    CONF_MAX_EVENT_STORAGE_GB,
    CONF_MAX_STORAGE_GB,
    CONF_MIN_FREE_GB,
    CONF_SEGMENT_SECONDS,
    CONF_STORAGE_PATH,
    DOMAIN,
)
from custom_components.pm_dvr.core.layout import events_dir, index_dir, recordings_dir
from custom_components.pm_dvr.core.retention import BYTES_PER_GB
from custom_components.pm_dvr.retention import RetentionManager, format_gb, retention_config

from .common import wait_for
from .conftest import camera_subentry
from .footage import BASE, CAMERAS, SIZE, gb, iso, make_clips
from .rig.rtsp import RtspServer

NO_FLOOR = {CONF_MIN_FREE_GB: 0}  # tests must not depend on the free space of the test disk


def make_event(
    storage: Path,
    event_id: str,
    clips: list[Path],
    *,
    state: str = "complete",
    keep: bool = False,
    created: float = BASE,
) -> Path:
    """An event folder: hard links to recordings clips and an event.json."""
    folder = events_dir(storage) / event_id
    for clip in clips:
        target = folder / clip.parent.parent.name / clip.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(clip, target)
    meta = {
        "id": event_id,
        "state": state,
        "keep": keep,
        "created": iso(created),
        "completed": iso(created + 60) if state == "complete" else None,
    }
    (folder / "event.json").write_text(json.dumps(meta))
    return folder


def event_bytes(storage: Path) -> int:
    """Bytes of the event folders, each inode once."""
    inodes: dict[int, int] = {}
    for path in events_dir(storage).rglob("*"):
        st = path.lstat()
        if path.is_file() and not path.is_symlink():
            inodes[st.st_ino] = st.st_size
    return sum(inodes.values())


def recordings(storage: Path) -> list[Path]:
    return sorted(recordings_dir(storage).rglob("*.mp4"))


def manager_of(entry: MockConfigEntry) -> RetentionManager:
    retention = entry.runtime_data.retention
    assert retention is not None
    return retention


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> RetentionManager:
    """Set up the hub and wait for the first retention run (started by setup)."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    manager = manager_of(entry)
    await wait_for(lambda: manager.runs >= 1)
    return manager


async def cleanup(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "cleanup", data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


def sensor(hass: HomeAssistant, key: str) -> str:
    state = hass.states.get(f"sensor.pm_dvr_{key}")
    assert state is not None
    return state.state


def hub_entry(storage: Path, options: dict[str, Any], **kwargs: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=str(storage),
        unique_id=str(storage),
        data={CONF_STORAGE_PATH: str(storage)},
        options={CONF_SEGMENT_SECONDS: 2, CONF_MAX_AGE_DAYS: 0, **options},
        **kwargs,
    )


@pytest.fixture(autouse=True)
async def unload_hubs(hass: HomeAssistant) -> AsyncIterator[None]:
    """Hubs a test set up itself are unloaded (threads joined) even when it fails."""
    yield
    for entry in hass.config_entries.async_loaded_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
def planted(storage_path: Path) -> dict[str, Any]:
    """30 synthetic clips five days old, a completed event, a kept one and one in progress."""
    clips = make_clips(storage_path, per_camera=10)
    return {
        "clips": clips,
        "done": make_event(storage_path, "20260101-000000-000_done", clips[0:3]),
        "keep": make_event(storage_path, "20260101-000100-000_keep", clips[3:5], keep=True),
        "busy": make_event(storage_path, "20260101-000200-000_busy", clips[5:6], state="recording"),
    }


@pytest.mark.parametrize("camera_subentries", [[]])
@pytest.mark.parametrize(
    "hub_options", [{CONF_MAX_STORAGE_GB: gb(10 * SIZE), CONF_MAX_AGE_DAYS: 0, **NO_FLOOR}]
)
async def test_quota_oldest_first_events_counted_once(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    storage_path: Path,
    planted: dict[str, Any],
) -> None:
    """The quota counts recordings no event holds; the oldest go first, event footage stays."""
    clips: list[Path] = planted["clips"]
    manager = await set_up(hass, mock_config_entry)
    # 24 clips are the recordings' own: the 14 oldest of them go, the event-linked ones count
    # toward events only (their recordings links go first, being oldest, and free nothing).
    assert recordings(storage_path) == sorted(clips[20:])
    usage = manager.usage
    assert usage is not None
    assert usage.recordings_bytes == 10 * SIZE
    assert usage.events_bytes == event_bytes(storage_path)
    assert usage.events_protected == 2
    for event in ("done", "keep", "busy"):
        assert len(list(planted[event].rglob("*.mp4"))) == {"done": 3, "keep": 2, "busy": 1}[event]
    # Shown in GB.
    assert float(sensor(hass, "recordings_size")) == pytest.approx(10 * SIZE / 1e9)
    assert float(sensor(hass, "events_size")) == pytest.approx(event_bytes(storage_path) / 1e9)
    oldest = datetime.fromisoformat(sensor(hass, "oldest_recording"))
    assert oldest.timestamp() == pytest.approx(BASE + 6 * 60 + 14)  # clips[20]'s start
    assert float(sensor(hass, "free_space")) > 0

    # An event quota smaller than the events: the oldest completed event goes, applied live.
    reloads_before = mock_config_entry.runtime_data
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={**mock_config_entry.options, CONF_MAX_EVENT_STORAGE_GB: gb(3 * SIZE)},
    )
    await hass.async_block_till_done()
    assert mock_config_entry.runtime_data is reloads_before  # no reload: cameras undisturbed
    await wait_for(lambda: not planted["done"].exists())
    assert planted["keep"].exists()
    assert planted["busy"].exists()
    await wait_for(lambda: manager.usage is not None and manager.usage.events_count == 2)
    assert manager.usage is not None
    assert manager.usage.events_protected == 2
    assert manager.usage.events_bytes == event_bytes(storage_path)
    assert manager.retention.config.max_event_storage_gb == gb(3 * SIZE)

    # Another part of pm_dvr (sync) deletes an event itself and says so: it is forgotten.
    await hass.async_add_executor_job(shutil.rmtree, planted["busy"])
    manager.async_refresh_event(planted["busy"].name)
    await wait_for(lambda: manager.usage is not None and manager.usage.events_protected == 1)
    assert manager.usage is not None
    assert manager.usage.events_bytes == event_bytes(storage_path)


@pytest.mark.parametrize("camera_subentries", [[]])
@pytest.mark.parametrize(
    "hub_options",
    [
        {
            CONF_MAX_STORAGE_GB: 100.0,
            CONF_MAX_AGE_DAYS: 3,
            CONF_MAX_EVENT_AGE_DAYS: 3,
            **NO_FLOOR,
        }
    ],
)
async def test_age_limits(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    storage_path: Path,
    planted: dict[str, Any],
) -> None:
    """Recordings and completed events older than their limits go; keep and busy events stay."""
    recent = make_clips(storage_path, per_camera=2, base=time.time() - 3600)
    await set_up(hass, mock_config_entry)
    assert recordings(storage_path) == sorted(recent)
    assert not planted["done"].exists()
    assert len(list(planted["keep"].rglob("*.mp4"))) == 2
    assert len(list(planted["busy"].rglob("*.mp4"))) == 1
    # Emptied day folders are removed.
    assert set(recordings_dir(storage_path).glob("*/*")) == {p.parent for p in recent}


@pytest.mark.parametrize("camera_subentries", [[]])
@pytest.mark.parametrize(
    "hub_options", [{CONF_MAX_STORAGE_GB: 100.0, CONF_MAX_AGE_DAYS: 0, **NO_FLOOR}]
)
async def test_restarts_read_the_index_saved_for_quiet_days(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, storage_path: Path
) -> None:
    """Day folders nobody writes to are indexed once and read back from their saved blocks at
    the next start; a clip removed by hand in between is noticed, and the sensors agree."""
    clips = make_clips(storage_path, per_camera=30)  # 30 minutes, five days ago
    for folder in {clip.parent for clip in clips}:
        os.utime(folder, (BASE, BASE))
    expected = (len(clips) * SIZE, iso(BASE))

    def shown() -> tuple[int, str | None]:
        size = round(float(sensor(hass, "recordings_size")) * 1e9)
        return size, iso(datetime.fromisoformat(sensor(hass, "oldest_recording")).timestamp())

    await set_up(hass, mock_config_entry)
    assert shown() == expected
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    blocks = sorted(index_dir(storage_path).rglob("*.idx"))
    assert [b.parent.name for b in blocks] == sorted(CAMERAS)

    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert shown() == expected
    assert len(mock_config_entry.runtime_data.index.clips("front")) == 30
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)

    clips[0].unlink()  # the oldest, front's
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert shown() == ((len(clips) - 1) * SIZE, iso(BASE + 7))


@pytest.mark.parametrize("camera_subentries", [[]])
@pytest.mark.parametrize(
    "hub_options", [{CONF_MAX_STORAGE_GB: 100.0, CONF_MAX_AGE_DAYS: 0, **NO_FLOOR}]
)
async def test_cleanup_service_and_button(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    storage_path: Path,
    planted: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The service shrinks to a target and says what it freed; planted links are never followed."""
    clips: list[Path] = planted["clips"]
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "20200101-000000.mp4"
    precious.write_bytes(b"precious")
    day = clips[0].parent
    (day / "20200101-000001.mp4").symlink_to(precious)
    (recordings_dir(storage_path) / "linked").symlink_to(outside, target_is_directory=True)
    (events_dir(storage_path) / "20200101-000000-000_link").symlink_to(outside)
    await set_up(hass, mock_config_entry)
    assert len(recordings(storage_path)) == 31  # under the quota: nothing to do (+ the symlink)

    response = await cleanup(hass, target_gb=gb(20 * SIZE))
    # The 6 event-linked clips are the oldest: their links go without freeing anything.
    assert response == {"files_deleted": 10, "bytes_freed": 4 * SIZE, "events_deleted": 0}
    assert recordings(storage_path) == sorted([*clips[10:], day / "20200101-000001.mp4"])
    response = await cleanup(hass, config_entry_id=mock_config_entry.entry_id)
    assert response == {"files_deleted": 0, "bytes_freed": 0, "events_deleted": 0}

    # The button: the target was once only, so it deletes nothing more.
    manager = manager_of(mock_config_entry)
    runs = manager.runs
    await hass.services.async_call(
        "button", SERVICE_PRESS, {ATTR_ENTITY_ID: "button.pm_dvr_clean_up_now"}, blocking=True
    )
    assert manager.runs == runs + 1
    assert len(recordings(storage_path)) == 21
    assert precious.read_bytes() == b"precious"
    assert (day / "20200101-000001.mp4").is_symlink()
    assert (events_dir(storage_path) / "20200101-000000-000_link").is_symlink()
    for event in ("done", "keep", "busy"):
        assert planted[event].exists()


async def keep(hass: HomeAssistant, service: str, event: str, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, service, {"event_id": event, **data}, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


def kept_flag(folder: Path) -> bool:
    keep: bool = json.loads((folder / "event.json").read_text())["keep"]
    return keep


@pytest.mark.parametrize("camera_subentries", [[]])
@pytest.mark.parametrize(
    "hub_options", [{CONF_MAX_STORAGE_GB: 100.0, CONF_MAX_AGE_DAYS: 0, **NO_FLOOR}]
)
async def test_keep_and_release_events(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    storage_path: Path,
    planted: dict[str, Any],
) -> None:
    """Kept events (by id, folder or media-source id) outlive an event quota they exceed, the
    media browser shows them kept; released, retention deletes them like any other."""
    from homeassistant.components.media_source import URI_SCHEME, async_browse_media

    await set_up(hass, mock_config_entry)
    assert await async_setup_component(hass, "media_source", {})
    done, planted_keep = planted["done"], planted["keep"]
    entry_id = mock_config_entry.entry_id
    media_id = f"{URI_SCHEME}{DOMAIN}/{entry_id}/event/{done.name}"
    response = await keep(hass, "keep_event", done.name)
    assert response == {"event_id": done.name, "path": str(done), "keep": True}
    assert await hass.async_add_executor_job(kept_flag, done)
    # Twice is once; the rest of event.json is left as it was.
    before = await hass.async_add_executor_job((done / "event.json").read_text)
    await keep(hass, "keep_event", f"{media_id}/front", config_entry_id=entry_id)
    assert await hass.async_add_executor_job((done / "event.json").read_text) == before

    events = await async_browse_media(hass, f"{URI_SCHEME}{DOMAIN}/{entry_id}/events")
    assert events.children is not None
    assert [child.title for child in events.children] == [
        "20260101-000200 (recording)",
        "20260101-000100 (kept)",
        "20260101-000000 (kept)",
    ]

    # An event quota smaller than any event: nothing may go.
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={**mock_config_entry.options, CONF_MAX_EVENT_STORAGE_GB: gb(SIZE)},
    )
    await hass.async_block_till_done()
    assert (await cleanup(hass))["events_deleted"] == 0
    assert all(
        await hass.async_add_executor_job(lambda: [e.is_dir() for e in (done, planted_keep)])
    )

    # Released by its folder, the planted kept event goes on the run the release asks for;
    # then the other, by media-source id.
    manager = manager_of(mock_config_entry)
    runs = manager.runs
    response = await keep(hass, "release_event", f"{planted_keep}/")
    assert response == {"event_id": planted_keep.name, "path": str(planted_keep), "keep": False}
    await wait_for(lambda: not planted_keep.exists())
    # (the run that deleted it may still be finishing in its thread: it counts when it returns)
    await wait_for(lambda: manager.runs > runs)
    assert done.exists()
    await keep(hass, "release_event", media_id)
    await wait_for(lambda: not done.exists())
    assert planted["busy"].exists()
    with pytest.raises(ServiceValidationError) as err:
        await keep(hass, "keep_event", done.name)
    assert err.value.translation_key == "unknown_event"


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_keep_on_several_hubs(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, tmp_path: Path
) -> None:
    """An id alone names the hub that has it; an id two hubs have needs the hub."""
    event_id = "20260101-000000-000_twin"
    second = hub_entry(tmp_path / "second", {CONF_MAX_STORAGE_GB: 1.0, **NO_FLOOR})
    await set_up(hass, mock_config_entry)
    await set_up(hass, second)
    storages = [Path(entry.data[CONF_STORAGE_PATH]) for entry in (mock_config_entry, second)]

    def plant(storage: Path) -> None:
        (events_dir(storage) / event_id).mkdir()
        make_event(storage, event_id, [])

    await hass.async_add_executor_job(plant, storages[1])
    assert (await keep(hass, "keep_event", event_id))["path"] == str(
        events_dir(storages[1]) / event_id
    )
    await hass.async_add_executor_job(plant, storages[0])
    with pytest.raises(ServiceValidationError) as err:
        await keep(hass, "keep_event", event_id)
    assert err.value.translation_key == "event_of_several_hubs"
    assert err.value.translation_placeholders == {"event_id": event_id}
    response = await keep(hass, "keep_event", event_id, config_entry_id=mock_config_entry.entry_id)
    assert response["path"] == str(events_dir(storages[0]) / event_id)
    for entry in (mock_config_entry, second):
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await keep(hass, "keep_event", event_id)
    assert err.value.translation_key == "no_hub_loaded"


async def test_cleanup_service_errors(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path
) -> None:
    """Bad targets and hubs get translated errors; two hubs need a choice."""
    assert await async_setup_component(hass, DOMAIN, {})
    with pytest.raises(ServiceValidationError) as err:
        await cleanup(hass)
    assert err.value.translation_key == "no_hub_loaded"
    first = hub_entry(storage_path, {CONF_MAX_STORAGE_GB: 1.0, **NO_FLOOR})
    second = hub_entry(tmp_path / "second", {CONF_MAX_STORAGE_GB: 1.0, **NO_FLOOR})
    await set_up(hass, first)
    with pytest.raises(ServiceValidationError) as err:
        await cleanup(hass, target_gb=-1)
    assert err.value.translation_key == "invalid_target"
    with pytest.raises(ServiceValidationError) as err:
        await cleanup(hass, config_entry_id="nope")
    assert err.value.translation_key == "hub_not_loaded"
    assert err.value.translation_placeholders == {"entry_id": "nope"}
    await set_up(hass, second)
    with pytest.raises(ServiceValidationError) as err:
        await cleanup(hass)
    assert err.value.translation_key == "several_hubs"
    assert (await cleanup(hass, config_entry_id=second.entry_id))["files_deleted"] == 0
    for entry in (first, second):
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_options_change_applied_live_or_by_reload(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Limits apply without a reload; any other option still reloads the hub."""
    await set_up(hass, mock_config_entry)
    data = mock_config_entry.runtime_data
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={**mock_config_entry.options, CONF_MAX_AGE_DAYS: 9, CONF_MIN_FREE_GB: None},
    )
    await hass.async_block_till_done()
    assert mock_config_entry.runtime_data is data
    assert data.settings_snapshot[1] == mock_config_entry.options
    assert manager_of(mock_config_entry).retention.config == retention_config(
        mock_config_entry.options
    )
    hass.config_entries.async_update_entry(
        mock_config_entry, options={**mock_config_entry.options, CONF_SEGMENT_SECONDS: 4}
    )
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert mock_config_entry.runtime_data is not data
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


def test_retention_config_defaults() -> None:
    """Options saved before the event limits existed (or an event quota left empty): the event
    quota is a fifth of the recordings quota, no event age limit, the automatic floor. An event
    quota set, 0 (unlimited) included, stays."""
    config = retention_config({CONF_MAX_STORAGE_GB: 2.5})
    assert (config.max_storage_gb, config.max_age_days) == (2.5, 0)
    assert (config.max_event_storage_gb, config.max_event_age_days) == (0.5, 0)
    assert config.min_free_gb is None
    assert retention_config({CONF_MAX_STORAGE_GB: 100}).max_event_storage_gb == 20
    assert retention_config({CONF_MAX_STORAGE_GB: 0.1}).max_event_storage_gb == 0.1
    assert retention_config({}).max_event_storage_gb == 0
    automatic = {CONF_MAX_STORAGE_GB: 7.0, CONF_MAX_EVENT_STORAGE_GB: None}
    assert retention_config(automatic).max_event_storage_gb == 1.4
    for value in (0, 3.5):
        options = {CONF_MAX_STORAGE_GB: 7.0, CONF_MAX_EVENT_STORAGE_GB: value}
        assert retention_config(options).max_event_storage_gb == value
    assert retention_config({CONF_MIN_FREE_GB: 1}).min_free_gb == 1.0
    assert format_gb(BYTES_PER_GB * 1.5) == "1.50 GB"


# With the real recorder


@pytest.mark.parametrize(
    "hub_options",
    [{CONF_SEGMENT_SECONDS: 2, CONF_MAX_STORAGE_GB: gb(600_000), CONF_MAX_AGE_DAYS: 0, **NO_FLOOR}],
)
async def test_quota_holds_while_recording(
    hass: HomeAssistant, init_integration: MockConfigEntry, storage_path: Path
) -> None:
    """Two real cameras: usage stays within one clip per camera of the quota; an event's
    footage survives its recordings links, counted toward events."""
    entry = init_integration
    manager = manager_of(entry)
    quota = 600_000
    await hass.services.async_call(
        DOMAIN,
        "capture_event",
        {ATTR_ENTITY_ID: ["camera.front_door"], "pre_seconds": 0, "post_seconds": 3},
        blocking=True,
        return_response=True,
    )
    index = manager.retention.index
    event = next(events_dir(storage_path).iterdir())
    largest = 0
    # Every run's deletions (sampling last_result misses a run followed by an idle one).
    deleted_by_run: list[int] = []
    publish = manager._publish

    def counting_publish(outcome: Any) -> None:
        publish(outcome)
        deleted_by_run.append(outcome.result.files_deleted)

    manager._publish = counting_publish  # type: ignore[method-assign]
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "retention never got past the event's clips"
        await hass.async_add_executor_job(time.sleep, 0.5)
        usage = await hass.async_add_executor_job(manager.retention.usage)
        largest = max([largest, *(c.size for cam in index.cameras() for c in index.clips(cam))])
        # A run follows each clip that takes the quota over: at most one clip per camera more.
        assert usage.recordings_bytes <= quota + 2 * largest
        doc = json.loads((event / "event.json").read_text())
        event_clips = list(event.rglob("*.mp4"))
        # Done once the event is complete and retention has deleted every recordings link of
        # its clips (they were among the oldest): only the event's link is left.
        if (
            doc["state"] == "complete"
            and event_clips
            and all(clip.stat().st_nlink == 1 for clip in event_clips)
        ):
            break
    # The run that unlinked the last recordings link may still be finishing in its thread: its
    # deletions are published when it returns.
    await wait_for(lambda: sum(deleted_by_run) > 0)
    # The footage survives in the event, counted once, toward events.
    await wait_for(lambda: manager.usage is not None and manager.usage.events_bytes > 0)
    assert manager.usage is not None
    assert manager.usage.events_bytes == event_bytes(storage_path)
    assert {c.stat().st_ino for c in event_clips}.isdisjoint(
        p.stat().st_ino for p in recordings(storage_path)
    )


# Emergency, on a real small disk


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs, unmounted afterwards; fails (never skips) if it cannot be mounted."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16M", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"Cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


async def test_emergency_on_a_full_disk(
    hass: HomeAssistant,
    small_fs: Path,
    rtsp_server: RtspServer,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Recordings are pruned to the floor first, events untouched; when that is not enough the
    oldest events not kept go, each logged once, with a repair issue saying so; when even that
    is not enough a second repair issue appears, recording goes on, and both clear once space is
    back. Each condition is logged once over many runs."""
    caplog.set_level("INFO", logger="custom_components.pm_dvr")
    hass.config.allowlist_external_dirs = {str(small_fs)}
    storage = small_fs / "storage"
    big = 256 * 1024
    clips = make_clips(storage, per_camera=12, size=big)  # 36 clips, 9 MB
    event = make_event(storage, "20260101-000000-000_ev", clips[:4], keep=True)  # 1 MB, kept
    plain = make_event(storage, "20260101-000100-000_plain", clips[4:8])  # 1 MB
    newer = make_event(storage, "20260101-000200-000_newer", clips[8:9], created=BASE + 120)
    floor = 8 * 1024 * 1024
    assert free_bytes(small_fs) < floor
    entry = hub_entry(
        storage,
        {CONF_MAX_STORAGE_GB: 100.0, CONF_MIN_FREE_GB: gb(floor)},
        subentries_data=[camera_subentry("Yard", rtsp_server.url("/cam2"), "yard")],
    )
    manager = await set_up(hass, entry)
    issue_id = f"low_disk_space_{entry.entry_id}"
    events_issue_id = f"events_deleted_for_space_{entry.entry_id}"

    await wait_for(lambda: free_bytes(small_fs) >= floor)
    left = recordings(storage)
    assert set(clips[:9]) <= set(left)  # shared with events: never deleted for recordings
    gone = [c for c in clips if c not in left]
    assert gone
    assert gone == clips[9 : 9 + len(gone)]  # oldest first
    event_clips = sorted(event / c.parent.parent.name / c.name for c in clips[:4])
    assert sorted(event.rglob("*.mp4")) == event_clips
    assert plain.is_dir()
    assert newer.is_dir()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert issue_registry.async_get_issue(DOMAIN, events_issue_id) is None
    assert manager.usage is not None
    assert float(sensor(hass, "free_space")) == pytest.approx(manager.usage.free_bytes / 1e9)

    # Something else fills the disk: every recording no event holds goes, then the events not
    # kept, oldest first, and that is not enough (the filler and the kept event leave less than
    # the floor).
    filler = small_fs / "other.bin"
    await hass.async_add_executor_job(filler.write_bytes, b"\0" * (free_bytes(small_fs) - 2 * big))
    await cleanup(hass)
    assert not plain.exists()
    assert not newer.exists()
    issue = issue_registry.async_get_issue(DOMAIN, events_issue_id)
    assert issue is not None
    assert issue.translation_key == "events_deleted_for_space"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable
    assert issue.translation_placeholders == {
        "storage": str(storage),
        "count": "2",
        "last": newer.name,
        "floor": format_gb(floor),
    }
    recorder = entry.runtime_data.cameras["sub_yard"].recorder
    assert recorder is not None
    clips_recorded = recorder.stats.clips
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "low_disk_space"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["storage"] == str(storage)
    assert issue.translation_placeholders["floor"] == format_gb(floor)
    assert issue.translation_placeholders["events"] == format_gb(event_bytes(storage))
    assert sorted(event.rglob("*.mp4")) == event_clips
    # Only the kept event's footage and the camera's newest clips are left.
    assert all(p in clips[:4] or p.parent.parent.name == "yard" for p in recordings(storage))
    # Recording carries on into what is left (each new clip is pruned while space is short),
    # every clip closing starts a run: nothing more is deleted from events, nothing re-logged.
    runs = manager.runs
    await wait_for(lambda: recorder.stats.clips >= clips_recorded + 2, timeout=30)
    await cleanup(hass)
    assert manager.runs >= runs + 2
    assert hass.states.get("sensor.yard_recording_state").state == "recording"
    assert sorted(event.rglob("*.mp4")) == event_clips

    def logged(text: str, level: str = "WARNING") -> int:
        return sum(1 for r in caplog.records if r.levelname == level and text in r.getMessage())

    assert logged(f"Deleted event {plain.name}") == 1
    assert logged(f"Deleted event {newer.name}") == 1
    assert logged("Deleted event") == 2
    assert logged("is under the floor") == 1
    assert logged("is still under the floor") == 1

    # The user frees space: the next run clears both issues.
    await hass.async_add_executor_job(filler.unlink)
    await cleanup(hass)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert issue_registry.async_get_issue(DOMAIN, events_issue_id) is None
    assert manager.usage is not None
    assert not manager.usage.low_space
    assert sorted(event.rglob("*.mp4")) == event_clips
    await cleanup(hass)
    assert logged("is back above the floor", "INFO") == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


# The worker


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_worker_runs_every_minute_one_run_at_a_time(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Runs come every minute without a trigger, never overlap, and a failing run does not
    stop the worker."""
    manager = await set_up(hass, mock_config_entry)
    retention = manager.retention
    active = 0
    overlaps: list[int] = []
    lock = threading.Lock()
    real_enforce, real_cleanup = retention.enforce, retention.cleanup

    def tracked(real: Any) -> Any:
        def run(*args: Any) -> Any:
            nonlocal active
            with lock:
                active += 1
                overlaps.append(active)
            time.sleep(0.2)
            with lock:
                active -= 1
            return real(*args)

        return run

    monkeypatch.setattr(retention, "enforce", tracked(real_enforce))
    monkeypatch.setattr(retention, "cleanup", tracked(real_cleanup))
    runs = manager.runs
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await asyncio.gather(cleanup(hass), cleanup(hass), wait_for(lambda: manager.runs >= runs + 3))
    assert overlaps
    assert max(overlaps) == 1

    failures = 0

    def broken(*args: Any) -> Any:
        nonlocal failures
        failures += 1
        raise OSError("disk on fire")

    def logged(text: str) -> int:
        return sum(text in r.getMessage() for r in caplog.records if r.levelname != "DEBUG")

    monkeypatch.setattr(retention, "enforce", broken)
    # The worker logs the failure (once, however many minutes it repeats), then at once waits
    # for its next minute again.
    for minutes in (2, 3, 4):
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=60 * minutes + 5))
        await wait_for(lambda m=minutes: failures >= m - 1)
    assert logged("Retention run failed") == 1
    monkeypatch.setattr(retention, "enforce", real_enforce)
    runs = manager.runs
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=310))
    await wait_for(lambda: manager.runs > runs)
    assert logged("Retention runs again") == 1


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_unload_waits_for_the_run_in_progress(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unloading while a run deletes files lets it finish in its thread first."""
    manager = await set_up(hass, mock_config_entry)
    started = threading.Event()
    finished = threading.Event()
    real_enforce = manager.retention.enforce

    def slow(*args: Any) -> Any:
        started.set()
        time.sleep(0.5)
        result = real_enforce(*args)
        finished.set()
        return result

    monkeypatch.setattr(manager.retention, "enforce", slow)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_add_executor_job(started.wait, 5)
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert finished.is_set()


@pytest.mark.parametrize(
    "hub_options",
    [
        {
            CONF_SEGMENT_SECONDS: 2,
            CONF_MAX_STORAGE_GB: 5.0,
            CONF_MAX_EVENT_STORAGE_GB: gb(1),
            CONF_MAX_AGE_DAYS: 0,
            **NO_FLOOR,
        }
    ],
)
async def test_event_quota_spares_events_in_progress_and_kept(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Over the event quota, captured events survive while recording; once complete the
    ordinary one goes and the kept one stays."""
    capture = init_integration.runtime_data.capture
    assert capture is not None
    manager = manager_of(init_integration)
    events = []
    for label in ("kept", "plain"):
        response = await hass.services.async_call(
            DOMAIN,
            "capture_event",
            {
                ATTR_ENTITY_ID: ["camera.garden"],
                "pre_seconds": 0,
                "post_seconds": 3,
                "label": label,
            },
            blocking=True,
            return_response=True,
        )
        assert isinstance(response, dict)
        events.append(Path(response["path"]))
    kept = await hass.services.async_call(
        DOMAIN, "keep_event", {"event_id": events[0].name}, blocking=True, return_response=True
    )
    assert kept == {"event_id": events[0].name, "path": str(events[0]), "keep": True}
    # Still recording: the manager writes it at once, and again when the event completes.
    doc = await hass.async_add_executor_job(
        lambda: json.loads((events[0] / "event.json").read_text())
    )
    assert (doc["state"], doc["keep"]) == ("recording", True)
    assert (await cleanup(hass))["events_deleted"] == 0
    assert all(event.is_dir() for event in events)
    await wait_for(lambda: not capture.active_events(), timeout=30)
    await wait_for(lambda: not events[1].exists())
    assert json.loads((events[0] / "event.json").read_text())["keep"] is True
    assert list(events[0].rglob("*.mp4"))
    await wait_for(lambda: manager.usage is not None and manager.usage.events_count == 1)
