"""Service input over every transport: HA's own call, the REST API and the WebSocket API.

Each refusal is a translated validation error: `hass.services.async_call` raises it with its
translation key, REST answers 400 with its message and logs nothing at ERROR (HA 2025.4 too,
whose REST API answers other errors than `vol.Invalid` with 500), the WebSocket API answers
`service_validation_error` with the translation. Valid calls still capture events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
from pathlib import Path, PurePosixPath
from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryError,
    ConfigEntryNotReady,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.pm_dvr.const import CONF_STORAGE_PATH, CONF_STREAM_URL, DOMAIN, EVENT_PM_DVR
from custom_components.pm_dvr.core.errors import (
    CannotConnectError,
    CaptureError,
    LabelTooLongError,
    StorageError,
)
from custom_components.pm_dvr.errors import PmDvrValidationError, refused, translate_errors
from custom_components.pm_dvr.services import EventRef, cameras_for_entities, parse_event_ref

from .common import wait_for
from .conftest import camera_subentry, two_cameras
from .rig.rtsp import RtspServer

FRONT = "camera.front_door"
EVENT_ID = "20260101-000000-000_gone"


@pytest.fixture
def camera_subentries(rtsp_server: RtspServer) -> list[ConfigSubentryData]:
    """Two cameras with windows short enough to capture in a test."""
    return two_cameras(rtsp_server, pre_seconds=2, post_seconds=2)


@dataclass
class Transports:
    """One HA with its REST and WebSocket APIs open to an admin."""

    hass: HomeAssistant
    rest: Any
    ws: MockHAClientWebSocket
    caplog: pytest.LogCaptureFixture
    next_id: int = 1
    checked: list[str] = field(default_factory=list)

    async def refused(
        self, service: str, data: Any, key: str, placeholders: dict[str, str] | None = None
    ) -> str:
        """Call with bad input three ways; each refuses it the same way. Returns the message."""
        case = f"{service} {data!r:.80}"
        with pytest.raises(ServiceValidationError) as err:
            await self.hass.services.async_call(DOMAIN, service, data, blocking=True)
        assert err.value.translation_domain == DOMAIN, case
        assert err.value.translation_key == key, case
        if placeholders is not None:
            assert err.value.translation_placeholders == placeholders, case
        message = str(err.value)
        assert message != key, case  # translated
        assert "{" not in message, case

        self.caplog.clear()
        response = await self.rest.post(f"/api/services/{DOMAIN}/{service}", json=data)
        assert response.status == 400, case
        assert await response.json() == {"message": message}, case
        errors = [r.getMessage() for r in self.caplog.records if r.levelno >= logging.ERROR]
        assert not errors, (case, errors)

        self.next_id += 1
        await self.ws.send_json(
            {
                "id": self.next_id,
                "type": "call_service",
                "domain": DOMAIN,
                "service": service,
                "service_data": data,
            }
        )
        answer = await self.ws.receive_json()
        assert answer["success"] is False, case
        error = answer["error"]
        assert error["code"] == "service_validation_error", case
        assert error["translation_domain"] == DOMAIN, case
        assert error["translation_key"] == key, case
        assert error["message"] == f"Validation error: {message}", case
        self.checked.append(key)
        return message


def stream_url(entry: MockConfigEntry) -> str:
    url: str = next(iter(entry.subentries.values())).data[CONF_STREAM_URL]
    return url


def recording(entry: MockConfigEntry) -> bool:
    return all(
        c.recorder is not None and c.recorder.enabled for c in entry.runtime_data.cameras.values()
    )


async def open_transports(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> Transports:
    """HA's REST and WebSocket APIs (both set up before a client starts the server)."""
    assert await async_setup_component(hass, "api", {})
    assert await async_setup_component(hass, "websocket_api", {})
    ws = await hass_ws_client(hass)
    return Transports(hass, await hass_client(), ws, caplog)


async def test_camera_services_refuse_bad_input_on_every_transport(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Schema refusals (cameras, ranges, label, fields) and the handlers' (unknown camera,
    another integration's camera, recording off) alike; nothing is captured."""
    call = await open_transports(hass, hass_client, hass_ws_client, caplog)
    await wait_for(lambda: recording(init_integration))
    er.async_get(hass).async_get_or_create("camera", "demo", "other", suggested_object_id="other")
    window = "{} must be between 0 and 3600"
    for service in ("capture_event", "start_persistent_recording", "stop_persistent_recording"):
        await call.refused(service, {ATTR_ENTITY_ID: []}, "no_camera", {})
        await call.refused(service, {ATTR_ENTITY_ID: None}, "no_camera", {})
        await call.refused(service, {}, "invalid_service_data")
        for entity_id in ("camera.nope", "camera.other", "switch.front_door_recording", "no id"):
            await call.refused(
                service,
                {ATTR_ENTITY_ID: [entity_id]},
                "unknown_camera_entity",
                {"entity_id": entity_id},
            )
    long_id = "camera." + "x" * 200
    await call.refused(
        "capture_event",
        {ATTR_ENTITY_ID: long_id + " "},
        "unknown_camera_entity",
        {"entity_id": long_id[:99] + "…"},
    )
    capture = {ATTR_ENTITY_ID: [FRONT]}
    for name, value in (("pre_seconds", -5), ("post_seconds", 99999), ("pre_seconds", "soon")):
        message = await call.refused(
            "capture_event",
            {**capture, name: value},
            "invalid_window",
            {"error": window.format(name)},
        )
        assert window.format(name) in message
    await call.refused(
        "capture_event",
        {**capture, "label": "x" * 5000},
        "label_too_long",
        {"error": "label longer than 64 characters"},
    )
    await call.refused(
        "start_persistent_recording", {**capture, "label": "x" * 5000}, "label_too_long"
    )
    message = await call.refused(
        "capture_event", {**capture, "colour": "red"}, "invalid_service_data"
    )
    assert "colour" in message
    await call.refused("capture_event", {**capture, "label": ["a"]}, "invalid_service_data")

    # Cameras of two hubs in one call; and no camera at all past the schema.
    porch = MockConfigEntry(
        domain=DOMAIN,
        unique_id="porch",
        data={CONF_STORAGE_PATH: str(init_integration.runtime_data.storage.parent / "porch")},
        options=dict(init_integration.options),
        subentries_data=[camera_subentry("Porch", stream_url(init_integration), "porch")],
    )
    porch.add_to_hass(hass)
    assert await hass.config_entries.async_setup(porch.entry_id)
    await hass.async_block_till_done()
    await call.refused(
        "capture_event", {ATTR_ENTITY_ID: [FRONT, "camera.porch"]}, "cameras_of_several_hubs", {}
    )
    with pytest.raises(ServiceValidationError) as err:
        cameras_for_entities(hass, [])
    assert err.value.translation_key == "no_camera"
    assert await hass.config_entries.async_unload(porch.entry_id)

    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: "switch.garden_recording"}, blocking=True
    )
    for service in ("capture_event", "start_persistent_recording"):
        await call.refused(
            service,
            {ATTR_ENTITY_ID: [FRONT, "camera.garden"]},
            "recording_off",
            {"camera": "Garden"},
        )
    events = init_integration.runtime_data.storage / "events"
    assert not await hass.async_add_executor_job(lambda: list(events.iterdir()))
    assert init_integration.runtime_data.capture is not None
    assert not init_integration.runtime_data.capture.active_events()


async def test_valid_calls_capture_on_every_transport(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """REST and WebSocket callers capture as automations do, numbers as text included."""
    call = await open_transports(hass, hass_client, hass_ws_client, caplog)
    await wait_for(lambda: recording(init_integration))
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_PM_DVR, fired.append)
    data = {ATTR_ENTITY_ID: "camera.front_door, camera.front_door", "post_seconds": "1"}
    response = await call.rest.post(
        f"/api/services/{DOMAIN}/capture_event?return_response", json={**data, "label": "rest"}
    )
    assert response.status == 200
    by_rest = (await response.json())["service_response"]
    await call.ws.send_json(
        {
            "id": 1,
            "type": "call_service",
            "domain": DOMAIN,
            "service": "capture_event",
            "service_data": {**data, "label": "ws", "pre_seconds": 0.5},
            "return_response": True,
        }
    )
    answer = await call.ws.receive_json()
    assert answer["success"] is True, answer
    by_ws = answer["result"]["response"]
    for event, label in ((by_rest, "rest"), (by_ws, "ws")):
        assert event["event_id"].endswith(f"_{label}")
        assert await hass.async_add_executor_job(Path(event["path"]).is_dir)
    await wait_for(
        lambda: {e.data["event_id"] for e in fired} >= {by_rest["event_id"], by_ws["event_id"]}
    )
    assert all(e.data["cameras"] == ["front-door"] for e in fired)


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_hub_services_refuse_bad_input_on_every_transport(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Clean-up, sync and keep: sizes, hubs and events, in the schema or in the handler."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    call = await open_transports(hass, hass_client, hass_ws_client, caplog)
    for target in (-1, "lots", True, "inf"):
        await call.refused(
            "cleanup", {"target_gb": target}, "invalid_target", {"target_gb": str(target)}
        )
    await call.refused(
        "cleanup", {"config_entry_id": "nope"}, "hub_not_loaded", {"entry_id": "nope"}
    )
    await call.refused(
        "sync_now", {"config_entry_id": "nope"}, "hub_not_loaded", {"entry_id": "nope"}
    )
    await call.refused("sync_now", {"now": True}, "invalid_service_data")

    storage = mock_config_entry.runtime_data.storage
    for service in ("keep_event", "release_event"):
        await call.refused(service, {}, "invalid_service_data")
        for bad in (
            "nope",
            "",
            "media-source://pm_dvr/x/rec/front",
            f"media-source://pm_dvr/x/event/{EVENT_ID}/../up",
            f"media-source://other/x/event/{EVENT_ID}",
            f"/media/../etc/{EVENT_ID}",
            f"{storage}/events/{EVENT_ID}/event.json",
        ):
            echoed = {"event": bad} if len(bad) < 100 else None  # longer ones are cut short
            await call.refused(service, {"event_id": bad}, "invalid_event", echoed)
        for missing in (EVENT_ID, f"{storage}/events/{EVENT_ID}", f"/elsewhere/events/{EVENT_ID}"):
            await call.refused(
                service, {"event_id": missing}, "unknown_event", {"event_id": EVENT_ID}
            )
        await call.refused(
            service,
            {"event_id": f"media-source://pm_dvr/nope/event/{EVENT_ID}"},
            "hub_not_loaded",
            {"entry_id": "nope"},
        )
        await call.refused(
            service,
            {"event_id": EVENT_ID, "config_entry_id": mock_config_entry.entry_id},
            "unknown_event",
        )


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_keep_refuses_as_the_core_does(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The capture manager's errors when keeping: the caller's fault is a validation error, a
    storage that fails is not."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    capture = mock_config_entry.runtime_data.capture
    assert capture is not None
    data = {"event_id": EVENT_ID, "config_entry_id": mock_config_entry.entry_id}
    for error, key in (
        (CaptureError("The capture manager is not running"), "capture_failed"),
        (StorageError("Event folder would leave the events folder"), "storage_not_writable"),
    ):

        async def fail(event_id: str, keep: bool, error: Exception = error) -> bool:
            raise error

        monkeypatch.setattr(capture, "mark_keep", fail)
        with pytest.raises(HomeAssistantError) as err:
            await hass.services.async_call(DOMAIN, "keep_event", data, blocking=True)
        assert err.value.translation_key == key
        assert err.value.translation_placeholders == {"error": str(error)}
        assert isinstance(err.value, ServiceValidationError) is (key == "capture_failed")
        assert str(error) in str(err.value)


def test_event_refs() -> None:
    """Ids, folders and media-source ids (of the event or of one camera's video)."""
    folder = "/media/pm_dvr/events"
    assert parse_event_ref(f" {EVENT_ID} ") == EventRef(EVENT_ID)
    assert parse_event_ref(f"{folder}/{EVENT_ID}/") == EventRef(
        EVENT_ID, folder=PurePosixPath(folder)
    )
    assert parse_event_ref(f"media-source://pm_dvr/hub/event/{EVENT_ID}") == EventRef(
        EVENT_ID, entry_id="hub"
    )
    assert parse_event_ref(f"media-source://pm_dvr/hub/event/{EVENT_ID}/front-door") == EventRef(
        EVENT_ID, entry_id="hub"
    )
    for bad in ("media-source://pm_dvr//event/" + EVENT_ID, f"{folder}/x", "x" + EVENT_ID):
        assert parse_event_ref(bad) is None


async def test_core_refusals(hass: HomeAssistant) -> None:
    """A core error in answer to a call: the caller's fault is a validation error (400 over
    REST), a storage that fails is not."""
    for error, key in (
        (LabelTooLongError("label longer than 64 characters"), "label_too_long"),
        (CaptureError("The capture manager is not running"), "capture_failed"),
        (StorageError("Event folder would leave the events folder"), "storage_not_writable"),
    ):
        answer = refused(error)
        assert answer.translation_domain == DOMAIN
        assert answer.translation_key == key
        assert answer.translation_placeholders == {"error": str(error)}
        assert isinstance(answer, PmDvrValidationError) is (key != "storage_not_writable")
    refusal = PmDvrValidationError("no_camera", {})
    assert repr(refusal) == "PmDvrValidationError('no_camera', {})"
    assert refusal.status == 400


async def test_one_error_map_for_setup_requests_and_updates(hass: HomeAssistant) -> None:
    """`translate_errors`: which translated HA exception a core error becomes depends on where
    it happens; anything else passes unchanged."""
    storage = StorageError("Storage path /x is not writable: Permission denied")
    camera = CannotConnectError("Cannot connect to rtsp://***@cam/1")
    label = LabelTooLongError("label longer than 64 characters")
    for during, error, expected in (
        ("setup", storage, ConfigEntryError),
        ("setup", camera, ConfigEntryNotReady),
        ("request", label, PmDvrValidationError),
        ("request", camera, HomeAssistantError),
        ("update", storage, UpdateFailed),
    ):
        with pytest.raises(HomeAssistantError) as caught, translate_errors(during):
            raise error
        assert type(caught.value) is expected, (during, error)
        assert caught.value.__cause__ is error
        assert caught.value.translation_domain == DOMAIN
        assert caught.value.translation_key == error.translation_key
        assert caught.value.translation_placeholders == {"error": str(error)}

    @translate_errors()
    async def handler(value: int, *, fail: Exception | None = None) -> int:
        """A service handler."""
        if fail is not None:
            raise fail
        return value * 2

    assert handler.__doc__ == "A service handler."
    assert await handler(21) == 42
    with pytest.raises(PmDvrValidationError):
        await handler(1, fail=label)
    refusal = PmDvrValidationError("no_camera", {})
    for passing in (refusal, ValueError("a bug")):
        with pytest.raises(type(passing)) as caught_as_is:
            await handler(1, fail=passing)
        assert caught_as_is.value is passing
