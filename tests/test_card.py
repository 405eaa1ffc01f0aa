"""The dashboard card: served by the integration and registered with the frontend."""

from __future__ import annotations

from http import HTTPStatus

from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL, UrlManager
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pm_dvr.card import CARD_FILE, CARD_URL, async_register_card
from custom_components.pm_dvr.const import DOMAIN


async def test_card_is_served_and_loaded_by_every_dashboard(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """With HA's frontend, its URL (versioned by the file's hash) is an extra module of every
    page, and the file is served to browsers that are not logged in yet (as HA's own are)."""
    hass.config.components.add("frontend")
    hass.data[DATA_EXTRA_MODULE_URL] = UrlManager(lambda *_: None, [])
    assert await async_setup_component(hass, DOMAIN, {})
    [url] = hass.data[DATA_EXTRA_MODULE_URL].urls
    assert url.startswith(f"{CARD_URL}?v=")
    client = await hass_client_no_auth()
    got = await client.get(url)
    assert got.status == HTTPStatus.OK
    assert await got.read() == CARD_FILE.read_bytes()
    assert "javascript" in got.headers["Content-Type"]


async def test_card_without_a_frontend_is_only_served(hass: HomeAssistant) -> None:
    """Home Assistant without its frontend: nothing to register with, and no error."""
    assert await async_setup_component(hass, "http", {})
    assert await async_register_card(hass) is None
