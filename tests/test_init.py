"""Setup, unload, live camera changes, and a camera that goes away and comes back."""

from __future__ import annotations

from datetime import timedelta
import logging
from pathlib import Path
import threading

import cv2
from homeassistant.components.camera import async_get_image
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.const import (
    ATTR_ENTITY_ID,
    EVENT_HOMEASSISTANT_STOP,
    STATE_OFF,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.util import dt as dt_util
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pm_dvr import async_migrate_entry
from custom_components.pm_dvr.const import DOMAIN, ENTRY_MINOR_VERSION, SUBENTRY_CAMERA
from custom_components.pm_dvr.devices import find_device
from custom_components.pm_dvr.issues import camera_issue_id

from .common import form_text, wait_for
from .conftest import as_subentry, camera_subentry, hub_like, target_subentry
from .rig.rtsp import RtspServer
from .rig.sockets import closed_port


def session_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pm_dvr stream")]


async def test_setup_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """Each camera is a device with a streaming session; unloading joins every thread."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert sorted(d.name for d in devices) == sorted(["Front door", "Garden", "pm_dvr"])
    assert sum(d.model == "DVR hub" for d in devices) == 1
    assert len(session_threads()) == 2
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert session_threads() == []


async def test_storage_not_writable(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, storage_path: Path
) -> None:
    """A storage path that cannot be created fails setup with a translated error."""
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    storage_path.write_text("not a folder")
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert mock_config_entry.reason is not None
    assert "storage" in mock_config_entry.reason.lower()
    assert session_threads() == []


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_setup_without_cameras(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A hub without cameras loads and runs no session."""
    assert init_integration.state is ConfigEntryState.LOADED
    assert session_threads() == []


async def test_camera_added_changed_removed_live(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    rtsp_server: RtspServer,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Subentry changes touch only their camera; the others keep recording undisturbed."""
    entry = init_integration
    cameras = entry.runtime_data.cameras
    front_id = next(i for i, c in cameras.items() if c.title == "Front door")
    garden = next(c for c in cameras.values() if c.title == "Garden")
    data = camera_subentry("Side", rtsp_server.url("/alaw"), "side")
    hass.config_entries.async_add_subentry(entry, as_subentry(data))
    await hass.async_block_till_done()
    side_id = next(i for i, s in entry.subentries.items() if s.title == "Side")
    await wait_for(lambda: side_id in cameras and cameras[side_id].session.available)
    await hass.async_block_till_done()
    assert hass.states.get("camera.side") is not None
    assert find_device(device_registry, entry.entry_id, side_id) is not None

    hass.config_entries.async_update_subentry(entry, entry.subentries[front_id], title="Front gate")
    await hass.async_block_till_done()
    await wait_for(lambda: cameras[front_id].session.available)
    await hass.async_block_till_done()
    device = find_device(device_registry, entry.entry_id, front_id)
    assert device is not None
    assert device.name == "Front gate"
    assert hass.states.get("camera.front_door").state != STATE_UNAVAILABLE

    assert hass.config_entries.async_remove_subentry(entry, side_id)
    await hass.async_block_till_done()
    assert side_id not in cameras
    assert find_device(device_registry, entry.entry_id, side_id) is None
    assert hass.states.get("camera.side") is None
    assert not entity_registry.async_get("camera.side")
    # The garden camera kept its first connection through all of this.
    assert cameras[garden.subentry_id] is garden
    assert garden.session.stats.connects == 1
    assert len(session_threads()) == 2


async def test_rebuilt_camera_keeps_its_switches(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A camera rebuilt for new settings starts with its switches as the user left them."""
    entry = init_integration
    for switch in ("switch.front_door_recording", "switch.front_door_motion_detection"):
        await hass.services.async_call(
            "switch", "turn_off", {ATTR_ENTITY_ID: switch}, blocking=True
        )
    old = entry.runtime_data.cameras["sub_front-door"]
    hass.config_entries.async_update_subentry(
        entry, entry.subentries["sub_front-door"], title="Front gate"
    )
    await hass.async_block_till_done()
    new = entry.runtime_data.cameras["sub_front-door"]
    assert new is not old
    assert new.recorder is not None
    assert not new.recorder.enabled
    assert not new.motion_enabled
    assert hass.states.get("switch.front_door_recording").state == STATE_OFF
    assert hass.states.get("switch.front_door_motion_detection").state == STATE_OFF


async def test_camera_drops_and_returns(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    rtsp_private: RtspServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The camera goes unavailable when its server dies, with one log line each way."""
    entry = hub_like(
        mock_config_entry, "x", [camera_subentry("Drive", rtsp_private.url("/cam"), "drive")]
    )
    entry.add_to_hass(hass)
    caplog.set_level(logging.INFO, logger="custom_components.pm_dvr")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(lambda: hass.states.get("camera.drive").state != STATE_UNAVAILABLE)
    rtsp_private.stop(kill=True)
    await wait_for(lambda: hass.states.get("camera.drive").state == STATE_UNAVAILABLE)
    await hass.async_add_executor_job(rtsp_private.start)
    await wait_for(lambda: hass.states.get("camera.drive").state != STATE_UNAVAILABLE, timeout=40)
    lost = [r for r in caplog.records if "unavailable" in r.getMessage()]
    back = [r for r in caplog.records if "is back" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].levelno == logging.WARNING
    assert len(back) == 1
    assert rtsp_private.url("/cam") not in caplog.text or "@" not in rtsp_private.url("/cam")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_home_assistant_stop_stops_sessions(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Shutting HA down closes every camera connection."""
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    await wait_for(lambda: not session_threads())
    assert init_integration.runtime_data.cameras == {}


async def test_hub_and_two_cameras_through_the_flows(
    hass: HomeAssistant,
    storage_path: Path,
    rtsp_server: RtspServer,
    device_registry: dr.DeviceRegistry,
) -> None:
    """What a user does: add the hub, add two cameras, see them; a wrong port is refused."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"storage_path": str(storage_path)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done()
    form = {"record": True, "audio": "auto", "pre_seconds": 10, "post_seconds": 30}
    for name, path in (("Porch", "/cam"), ("Yard", "/cam2")):
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, "camera"), context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {**form, "name": name, "stream_url": rtsp_server.url(path)}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "camera"), context={"source": SOURCE_USER}
    )
    wrong_port = rtsp_server.url("/cam").replace(f":{rtsp_server.port}/", ":1/")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form, "name": "Wrong", "stream_url": wrong_port}
    )
    assert result["errors"] == {"stream_url": "cannot_connect"}
    await hass.async_block_till_done()
    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert sorted((d.name, d.model) for d in devices if d.model != "DVR hub") == [
        ("Porch", "H.264 640x360"),
        ("Yard", "H.264 320x180"),
    ]
    await wait_for(lambda: all(c.session.available for c in entry.runtime_data.cameras.values()))
    for entity_id, shape in (("camera.porch", (360, 640, 3)), ("camera.yard", (180, 320, 3))):
        image = await async_get_image(hass, entity_id)
        decoded = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None
        assert decoded.shape == shape
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert session_threads() == []


# -- secrets (issue #17, part 5) -------------------------------------------------------------

SECRET = "hunter2"
QUERY_LOGIN = f"?user=admin&password={SECRET}"


def old_camera(name: str, url: str, slug: str) -> ConfigSubentryData:
    """A camera as pm_dvr up to entry version 1.1 stored it: its unique id was its URL without
    userinfo, but with the query's password."""
    data = camera_subentry(name, url, slug)
    data["unique_id"] = url.replace("admin:hunter2@", "")
    return data


def shown_anywhere(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """What HA stores in the clear or shows: entry and subentry ids and titles, the entity and
    device registries, and every state with its attributes."""
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    states = [hass.states.get(e.entity_id) for e in entities]
    return repr(
        [
            entry.unique_id,
            entry.title,
            [(s.unique_id, s.title) for s in entry.subentries.values()],
            entities,
            devices,
            [state.as_dict() for state in states if state is not None],
        ]
    )


async def test_migration_takes_secrets_out_of_camera_ids(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    rtsp_server: RtspServer,
    entity_registry: er.EntityRegistry,
) -> None:
    """An entry of 1.1 whose camera ids hold a password comes up as 1.2 with ids that hold none;
    its entities (ids built from the subentry, not the URL) keep their ids, so their history."""
    porch_url = rtsp_server.url("/cam") + QUERY_LOGIN
    yard_url = rtsp_server.url("/cam2", "admin:hunter2") + f"?channel=1&PassWord={SECRET}"
    entry = hub_like(
        mock_config_entry,
        str(mock_config_entry.data["storage_path"]),
        [old_camera("Porch", porch_url, "porch"), old_camera("Yard", yard_url, "yard")],
    )
    assert entry.minor_version == 1
    entry.add_to_hass(hass)
    assert SECRET in entry.subentries["sub_porch"].unique_id  # type: ignore[operator]
    legacy = entity_registry.async_get_or_create(
        "camera",
        DOMAIN,
        "sub_porch_camera",
        suggested_object_id="legacy_porch",
        config_entry=entry,
        config_subentry_id="sub_porch",
    )
    assert legacy.entity_id == "camera.legacy_porch"

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (1, ENTRY_MINOR_VERSION)
    assert entry.subentries["sub_porch"].unique_id == rtsp_server.url("/cam")
    assert entry.subentries["sub_yard"].unique_id == rtsp_server.url("/cam2") + "?channel=1"
    # The cameras still use their full URLs.
    cameras = entry.runtime_data.cameras
    assert cameras["sub_porch"].session.url == porch_url
    await wait_for(lambda: all(c.session.available for c in cameras.values()))
    await hass.async_block_till_done()
    assert entity_registry.async_get("camera.legacy_porch") is not None
    assert entity_registry.async_get("camera.legacy_porch").unique_id == "sub_porch_camera"  # type: ignore[union-attr]
    assert hass.states.get("camera.legacy_porch").state != STATE_UNAVAILABLE  # type: ignore[union-attr]
    assert hass.states.get("camera.porch") is None
    assert hass.states.get("camera.yard") is not None
    assert SECRET not in shown_anywhere(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_migrate_entry_edge_cases(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """One stream reached with two logins: the second keeps no id rather than a duplicate;
    targets' ids stay; an entry of a newer major version is refused, a newer minor kept."""
    url = "rtsp://127.0.0.1:1/cam"
    entry = hub_like(
        mock_config_entry,
        "hub",
        [
            old_camera("One", f"{url}?user=a&password={SECRET}", "one"),
            old_camera("Two", f"{url}?user=b&pwd=other", "two"),
            old_camera("Three", "rtsp://127.0.0.1:1/three", "three"),
            target_subentry("sub_target", "NAS", {"target_type": "folder", "path": "/nas"}),
        ],
    )
    entry.add_to_hass(hass)
    assert await async_migrate_entry(hass, entry)
    ids = {s.subentry_id: s.unique_id for s in entry.subentries.values()}
    assert ids == {
        "sub_one": url,
        "sub_two": None,
        "sub_three": "rtsp://127.0.0.1:1/three",
        "sub_target": "test:sub_target",
    }
    assert entry.minor_version == ENTRY_MINOR_VERSION
    assert await async_migrate_entry(hass, entry)  # nothing left to do

    newer = MockConfigEntry(domain=DOMAIN, version=2, data={"storage_path": "/x"})
    newer.add_to_hass(hass)
    assert not await async_migrate_entry(hass, newer)
    minor = MockConfigEntry(domain=DOMAIN, minor_version=9, data={"storage_path": "/y"})
    minor.add_to_hass(hass)
    assert await async_migrate_entry(hass, minor)
    assert minor.minor_version == 9


@pytest.mark.usefixtures("socket_enabled")
async def test_query_password_never_shown(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A camera at `?user=admin&password=hunter2` that cannot be reached (a closed port): the
    password is in no log line, diagnostics, repair, form, title, attribute or unique id."""
    caplog.set_level(logging.DEBUG)
    url = f"rtsp://127.0.0.1:{closed_port()}/cam{QUERY_LOGIN}"
    entry = hub_like(mock_config_entry, "hub", [old_camera("Porch", url, "porch")])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    masked = url.replace(SECRET, "***")
    # (the session thread logs the failure just after it records it as the last error)
    await wait_for(lambda: f"Cannot connect to {masked}: ConnectionRefusedError" in caplog.text)
    await hass.async_block_till_done()

    # The camera has been unreachable for 30 minutes: a repair names the error, masked.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=1, seconds=1))
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=32))
    await hass.async_block_till_done()
    issue = issue_registry.async_get_issue(DOMAIN, camera_issue_id("sub_porch"))
    assert issue is not None
    assert "127.0.0.1" in repr(issue.translation_placeholders)
    assert SECRET not in repr(issue)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    camera = next(s for s in diagnostics["entry"]["subentries"] if s["title"] == "Porch")
    assert camera["data"]["stream_url"] == url.replace(SECRET, "**REDACTED**")
    assert "127.0.0.1" in diagnostics["cameras"]["porch"]["session"]["last_error"]

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CAMERA),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": "sub_porch"},
    )
    assert result["data_schema"]({})["stream_url"] == masked
    texts = [form_text(result)]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Porch", "stream_url": masked}
    )
    assert result["errors"] == {"stream_url": "cannot_connect"}
    texts.append(form_text(result))

    for text in (caplog.text, repr(diagnostics), *texts, shown_anywhere(hass, entry)):
        assert SECRET not in text
    assert await hass.config_entries.async_unload(entry.entry_id)
