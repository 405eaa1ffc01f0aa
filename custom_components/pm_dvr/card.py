"""The dashboard card: the integration serves its built JavaScript and registers it with HA's
frontend, so users add "pm_dvr review" to a dashboard without installing a HACS plugin.

The URL carries a hash of the file, so a browser fetches the card again after an update and
caches it otherwise. The source is in `frontend/` at the top of the repository.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant

from .const import DOMAIN, LOGGER

CARD_FILE: Final = Path(__file__).parent / "frontend" / "pm-dvr-card.js"
CARD_URL: Final = f"/{DOMAIN}/pm-dvr-card.js"


def _version() -> str:
    return hashlib.sha256(CARD_FILE.read_bytes()).hexdigest()[:12]


async def async_register_card(hass: HomeAssistant) -> str | None:
    """Serve the card and load it in every dashboard; the URL the frontend loads, or None when
    Home Assistant runs without its frontend."""
    await hass.http.async_register_static_paths([StaticPathConfig(CARD_URL, str(CARD_FILE), True)])
    if "frontend" not in hass.config.components:
        LOGGER.debug("No frontend: the card is served but not registered")
        return None
    url = f"{CARD_URL}?v={await hass.async_add_executor_job(_version)}"
    add_extra_js_url(hass, url)
    return url
