"""The blueprint in blueprints/automation/pm_dvr: valid for HA's schema, and it really captures
an event and notifies with the Last motion image when motion starts."""

from __future__ import annotations

from pathlib import Path
import shutil

from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint.models import Blueprint
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

from .common import wait_for

BLUEPRINT = (
    Path(__file__).parent.parent
    / "blueprints"
    / "automation"
    / "pm_dvr"
    / "capture_and_notify.yaml"
)


def test_blueprint_matches_ha_schema() -> None:
    """HA's own automation blueprint schema accepts it, with every input it uses declared."""
    blueprint = Blueprint(
        load_yaml_dict(BLUEPRINT), expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA
    )
    assert blueprint.domain == "automation"
    assert set(blueprint.inputs) == {
        "motion_sensors",
        "use_mqtt",
        "mqtt_topic",
        "cameras",
        "pre_seconds",
        "post_seconds",
        "label",
        "notify_action",
        "last_motion_image",
        "cooldown",
    }
    assert blueprint.metadata["source_url"].endswith(
        "blueprints/automation/pm_dvr/capture_and_notify.yaml"
    )


async def test_blueprint_captures_and_notifies(
    hass: HomeAssistant, init_integration: MockConfigEntry, tmp_path: Path
) -> None:
    """Motion on: an event of the camera is captured and the phone gets the Last motion image."""
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "pm_dvr" / BLUEPRINT.name
    target.parent.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target)
    notified = async_mock_service(hass, "notify", "phone")
    hass.states.async_set("binary_sensor.hall_motion", "off", {"device_class": "motion"})
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": "dvr",
                "use_blueprint": {
                    "path": f"pm_dvr/{BLUEPRINT.name}",
                    "input": {
                        "motion_sensors": ["binary_sensor.hall_motion"],
                        "cameras": ["camera.front_door"],
                        "pre_seconds": 2,
                        "post_seconds": 0,
                        "label": "Hall",
                        "notify_action": "notify.phone",
                        "last_motion_image": "image.front_door_last_motion",
                        "cooldown": 0,
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()
    (automation,) = hass.states.async_entity_ids("automation")
    assert hass.states.is_state(automation, "on")  # inputs substituted, triggers attached
    index = init_integration.runtime_data.index
    await wait_for(lambda: index.count("front-door") >= 2, timeout=30)
    hass.states.async_set("binary_sensor.hall_motion", "on", {"device_class": "motion"})
    await wait_for(lambda: notified, timeout=20)
    await hass.async_block_till_done()
    call = notified[0]
    assert call.data["title"] == "Hall"
    assert call.data["data"]["image"] == "/api/image_proxy/image.front_door_last_motion"
    events = list((init_integration.runtime_data.storage / "events").iterdir())
    assert len(events) == 1
    assert events[0].name.endswith("_hall")
    assert events[0].name in call.data["message"]
    assert (events[0] / "front-door").is_dir()
