"""MQTT triggers against a real Mosquitto broker behind Home Assistant's own MQTT integration."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
import json
import logging
from pathlib import Path
from typing import Any

import av
from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PORT, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pm_dvr.const import (
    CONF_MQTT_TOPIC,
    CONF_STORAGE_PATH,
    DEFAULT_MQTT_TOPIC,
    DOMAIN,
)

from .common import wait_for
from .rig.mosquitto import Mosquitto, Subscriber

TOPIC = "test/pm_dvr/capture"
EVENTS_TOPIC = f"{TOPIC}/events"


@pytest.fixture
def mosquitto(tmp_path: Path, socket_enabled: None) -> Iterator[Mosquitto]:
    """A broker of the test's own on a free loopback port (sockets allowed to 127.0.0.1)."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant, mock_hass_config: None, mosquitto: Mosquitto
) -> AsyncGenerator[MockConfigEntry]:
    """HA's MQTT integration set up against the broker, connected (no configuration.yaml)."""
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN,
        data={mqtt.CONF_BROKER: mosquitto.host, CONF_PORT: mosquitto.port},
        version=mqtt.CONFIG_ENTRY_VERSION,
        minor_version=mqtt.CONFIG_ENTRY_MINOR_VERSION,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: mqtt.is_connected(hass))
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture
def hub_options(hub_options: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """The hub listens on the test topic (or the one a test parametrizes)."""
    return {**hub_options, CONF_MQTT_TOPIC: getattr(request, "param", TOPIC)}


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """pm_dvr's info lines captured from setup on."""
    caplog.set_level(logging.INFO, logger="custom_components.pm_dvr")
    return caplog


@pytest.fixture
async def subscribed(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    mqtt_entry: MockConfigEntry,
    init_integration: MockConfigEntry,
) -> AsyncGenerator[Subscriber]:
    """pm_dvr subscribed (seen by the broker) and an outside client on the events topic."""
    trigger = init_integration.runtime_data.mqtt
    assert trigger is not None
    await wait_for(lambda: trigger.subscribed)
    await hass.async_add_executor_job(mosquitto.wait_for_subscription, TOPIC)
    subscriber = await hass.async_add_executor_job(mosquitto.subscribe, EVENTS_TOPIC)
    yield subscriber
    await hass.async_add_executor_job(subscriber.stop)


def _events(storage: Path) -> list[Path]:
    """Event folders whose event.json is written."""
    root = storage / "events"
    return sorted(p.parent for p in root.glob("*/event.json"))


def _read(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "event.json").read_text())


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Log lines of the setup and call phases (pm_dvr's setup logs while fixtures run)."""
    return "\n".join(r.getMessage() for r in caplog.get_records("setup") + caplog.records)


def _published(subscriber: Subscriber, event_id: str) -> list[dict[str, Any]]:
    messages = [json.loads(line) for line in subscriber.messages]
    return [m for m in messages if m["event_id"] == event_id]


async def test_json_payload_captures_event_and_publishes_states(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    subscribed: Subscriber,
    init_integration: MockConfigEntry,
    storage_path: Path,
) -> None:
    """A JSON message links the right clips (index and decoding agree); states reach /events."""
    index = init_integration.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 3, timeout=30)
    payload = {"cameras": ["Front door"], "pre_seconds": 4, "post_seconds": 4, "label": "Gate"}
    await hass.async_add_executor_job(mosquitto.publish, TOPIC, json.dumps(payload))
    await wait_for(lambda: _events(storage_path), timeout=10)
    (folder,) = _events(storage_path)
    assert folder.name.endswith("_gate")
    await wait_for(lambda: _read(folder)["state"] == "complete", timeout=30)
    event = await hass.async_add_executor_job(_read, folder)
    assert event["trigger"] == "mqtt"
    assert event["label"] == "Gate"
    assert event["cameras"] == ["front-door"]
    linked = sorted((folder / "front-door").iterdir())
    assert [p.name for p in linked] == [c["name"] for c in event["clips"]["front-door"]]
    recordings = {c.path.name: c for c in index.clips("front-door")}
    for path in linked:
        assert path.stat().st_ino == recordings[path.name].path.stat().st_ino
        assert await hass.async_add_executor_job(_frames, path) > 0
    covered = (recordings[linked[0].name].start, recordings[linked[-1].name].end)
    assert covered[1] - covered[0] >= 8 - 2.5

    await wait_for(lambda: len(_published(subscribed, folder.name)) >= 2, timeout=10)
    states = _published(subscribed, folder.name)
    assert [m["state"] for m in states] == ["recording", "complete"]
    assert states[0]["trigger"] == "mqtt"
    assert states[0]["cameras"] == ["front-door"]
    assert hass.states.get("sensor.front_door_last_event").attributes["event_id"] == folder.name


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "malformed JSON"),
        ("x" * 5000, "larger than 4096 bytes"),
        ("Back yard", "Unknown camera: 'Back yard'"),
        ('{"cameras": ["garden"], "pre_seconds": 9000}', "pre_seconds must be between 0 and 3600"),
        ('{"camera": "garden", "colour": "red"}', "unknown key 'colour'"),
    ],
)
async def test_bad_payload_is_ignored_with_a_log_line(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    subscribed: Subscriber,
    storage_path: Path,
    caplog: pytest.LogCaptureFixture,
    payload: str,
    reason: str,
) -> None:
    """Malformed, oversized or unknown-camera messages: one warning with the reason, no event."""
    caplog.set_level(logging.WARNING, logger="custom_components.pm_dvr")
    await hass.async_add_executor_job(mosquitto.publish, TOPIC, payload)
    expected = f"Ignoring the message on {TOPIC}: {reason}"
    await wait_for(lambda: expected in caplog.text, timeout=10)
    lines = [r.getMessage() for r in caplog.records if "Ignoring the message" in r.getMessage()]
    assert lines == [expected]
    assert "x" * 100 not in caplog.text  # the payload itself is never logged
    assert not _events(storage_path)


async def test_empty_payload_and_persistent_on_off(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    subscribed: Subscriber,
    init_integration: MockConfigEntry,
    storage_path: Path,
) -> None:
    """Empty: every camera, their own windows. Persistent on/off drives the switch."""
    await hass.async_add_executor_job(mosquitto.publish, TOPIC, "")
    await wait_for(lambda: _events(storage_path), timeout=10)
    (everyone,) = _events(storage_path)
    event = await hass.async_add_executor_job(_read, everyone)
    assert event["cameras"] == ["front-door", "garden"]
    assert event["trigger"] == "mqtt"

    switch = "switch.garden_persistent_recording"
    assert hass.states.get(switch).state == STATE_OFF
    await hass.async_add_executor_job(
        mosquitto.publish,
        TOPIC,
        '{"camera": "garden", "persistent": "on", "label": "Away", "pre_seconds": 0}',
    )
    await wait_for(lambda: hass.states.get(switch).state == STATE_ON, timeout=10)
    capture = init_integration.runtime_data.capture
    assert capture is not None
    info = capture.last_event("garden")
    assert info is not None
    assert info.persistent
    assert info.label == "Away"
    assert info.created is not None
    assert info.start == info.created  # the message's pre_seconds, not the camera's 10 s
    assert hass.states.get("switch.front_door_persistent_recording").state == STATE_OFF
    await hass.async_add_executor_job(
        mosquitto.publish, TOPIC, '{"camera": "garden", "persistent": "off", "post_seconds": 0}'
    )
    await wait_for(lambda: hass.states.get(switch).state == STATE_OFF, timeout=10)
    # The stop (window end now known) is published at once, before the post-roll completes it.
    await wait_for(
        lambda: any(not m["persistent"] for m in _published(subscribed, info.event_id)), timeout=10
    )
    stopped = next(m for m in _published(subscribed, info.event_id) if not m["persistent"])
    assert stopped["end"] is not None
    # Post-roll 0: the event completes with the clip that covers the stop.
    await wait_for(
        lambda: "complete" in [m["state"] for m in _published(subscribed, info.event_id)], 20
    )


async def test_without_mqtt_integration_pm_dvr_still_works(
    hass: HomeAssistant, info_logs: pytest.LogCaptureFixture, init_integration: MockConfigEntry
) -> None:
    """A topic set but no MQTT integration: one info line, the hub and its services work."""
    trigger = init_integration.runtime_data.mqtt
    assert trigger is not None
    await wait_for(lambda: "MQTT triggers are off" in _logged(info_logs), timeout=10)
    assert not trigger.subscribed
    response = await hass.services.async_call(
        DOMAIN,
        "capture_event",
        {"entity_id": ["camera.garden"], "pre_seconds": 0, "post_seconds": 0},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["event_id"]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """pm_dvr's debug lines captured from setup on."""
    caplog.set_level(logging.DEBUG, logger="custom_components.pm_dvr")
    return caplog


@pytest.mark.parametrize("hub_options", [DEFAULT_MQTT_TOPIC], indirect=True)
async def test_the_default_topic_without_mqtt_is_no_news(
    debug_logs: pytest.LogCaptureFixture, init_integration: MockConfigEntry
) -> None:
    """Every hub has the default topic: without MQTT that is a debug line, not an info line."""
    await wait_for(lambda: "MQTT triggers are off" in _logged(debug_logs), timeout=10)
    records = debug_logs.get_records("setup") + debug_logs.records
    lines = [r for r in records if "MQTT triggers are off" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.DEBUG]


@pytest.mark.parametrize("hub_options", ["test/#"], indirect=True)
async def test_wildcard_topic_is_refused(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture, init_integration: MockConfigEntry
) -> None:
    """Events are published under the topic, so it must be a plain one."""
    assert init_integration.runtime_data.mqtt is None
    assert "is not a plain topic" in _logged(caplog)


async def test_recording_off_and_storage_failure_are_logged(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    subscribed: Subscriber,
    storage_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A camera that does not record, or storage that refuses the event: logged, not raised."""
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.garden_recording"}, blocking=True
    )
    await hass.async_add_executor_job(mosquitto.publish, TOPIC, "garden")
    await wait_for(lambda: "recording is off for Garden, not captured" in caplog.text, 10)

    events = storage_path / "events"
    events.rmdir()
    events.write_text("not a folder")
    await hass.async_add_executor_job(mosquitto.publish, TOPIC, "front-door")
    await wait_for(lambda: f"Message on {TOPIC} not captured" in caplog.text, timeout=10)
    events.unlink()


async def test_event_changes_after_mqtt_is_removed(
    hass: HomeAssistant,
    subscribed: Subscriber,
    mqtt_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MQTT unloaded under a running hub: events go on, publishing them is skipped quietly."""
    caplog.set_level(logging.DEBUG, logger="custom_components.pm_dvr")
    assert await hass.config_entries.async_unload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
    response = await hass.services.async_call(
        DOMAIN,
        "capture_event",
        {"entity_id": ["camera.garden"], "pre_seconds": 0, "post_seconds": 0},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    await wait_for(lambda: f"not published to {EVENTS_TOPIC}" in caplog.text, timeout=10)


async def test_message_to_a_hub_without_cameras(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    mqtt_entry: MockConfigEntry,
    storage_path: Path,
    hub_options: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing to capture: the reason is logged."""
    entry = MockConfigEntry(
        domain=DOMAIN, data={CONF_STORAGE_PATH: str(storage_path)}, options=hub_options
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    trigger = entry.runtime_data.mqtt
    assert trigger is not None
    await wait_for(lambda: trigger.subscribed)
    await hass.async_add_executor_job(mosquitto.wait_for_subscription, TOPIC)
    await hass.async_add_executor_job(mosquitto.publish, TOPIC, "")
    await wait_for(lambda: "the hub has no cameras" in caplog.text, timeout=10)
    assert await hass.config_entries.async_unload(entry.entry_id)
