"""The live view endpoint: MPEG-TS from the camera's one connection, for HA and players.

`GET /api/pm_dvr/live/<camera>` (`?stream=sub` for the sub-stream, when one is configured), where
`<camera>` is the camera's id or its camera entity.
Allowed with HA authentication (a bearer token or a signed path), a long-lived access token in
`access_token` (for players that cannot send headers, such as VLC), or the camera's own live
token, which HA's stream worker and go2rtc get through `stream_source()`.
"""

from __future__ import annotations

import contextlib
import hmac
from typing import Final

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_AUTHENTICATED, HomeAssistantView
from homeassistant.helpers.network import NoURLAvailableError, get_url

from .const import DOMAIN, LOGGER
from .coordinator import CameraCoordinator
from .core.live import LiveSource, serve_viewer
from .data import PmDvrConfigEntry

LIVE_PATH: Final = "/api/pm_dvr/live/{camera}"
MIME_TS: Final = "video/mp2t"
# Viewers per stream; more get 503 (each holds a bounded queue, so this bounds the memory).
MAX_VIEWERS: Final = 16
STREAMS: Final = ("main", "sub")


def live_url(hass: HomeAssistant, coordinator: CameraCoordinator) -> str:
    """The URL HA's stream worker (or go2rtc, which may run elsewhere) opens for live view.

    HA's internal URL when it has one, so a go2rtc on another host reaches it; else loopback.
    The token rotates whenever the camera is rebuilt (new settings, reload, restart).
    """
    try:
        base = get_url(hass, allow_external=False, allow_cloud=False)
    except NoURLAvailableError:
        base = f"http://127.0.0.1:{hass.http.server_port or 8123}"
    return f"{base}{LIVE_PATH.format(camera=coordinator.slug)}?token={coordinator.live_token}"


def _camera(hass: HomeAssistant, name: str) -> CameraCoordinator | None:
    """The camera by its id (`front-door`) or its camera entity (`front_door`, or with
    `camera.`): users build the URL from either."""
    entity_id = name if name.startswith("camera.") else f"camera.{name}"
    entries: list[PmDvrConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    coordinators = [
        coordinator
        for entry in entries
        if entry.state is ConfigEntryState.LOADED
        for coordinator in entry.runtime_data.cameras.values()
    ]
    for coordinator in coordinators:
        if coordinator.slug == name:
            return coordinator
    for coordinator in coordinators:
        if any(entity.entity_id == entity_id for entity in coordinator.entities):
            return coordinator
    return None


class PmDvrLiveView(HomeAssistantView):
    """Streams a camera's live MPEG-TS to one viewer, from the session (never the camera)."""

    url = LIVE_PATH
    name = "api:pm_dvr:live"
    # Checked here: HA auth, a long-lived token in the query, or the camera's live token.
    requires_auth = False

    def __init__(self, hass: HomeAssistant) -> None:
        """The view finds cameras in the loaded hubs at each request."""
        self.hass = hass

    def _allowed(self, request: web.Request, coordinator: CameraCoordinator | None) -> bool:
        if request.get(KEY_AUTHENTICATED, False):
            return True
        if (access_token := request.query.get("access_token")) is not None:
            return self.hass.auth.async_validate_access_token(access_token) is not None
        token = request.query.get("token")
        return (
            coordinator is not None
            and token is not None
            and hmac.compare_digest(token.encode(), coordinator.live_token.encode())
        )

    async def get(self, request: web.Request, camera: str) -> web.StreamResponse:
        """401 without auth, 404 for an unknown camera or stream, 503 while it is down."""
        coordinator = _camera(self.hass, camera)
        if not self._allowed(request, coordinator):
            raise web.HTTPUnauthorized
        if coordinator is None:
            raise web.HTTPNotFound(reason="No such camera")
        stream = request.query.get("stream", "main")
        source = coordinator.live_source(stream) if stream in STREAMS else None
        if source is None:
            raise web.HTTPNotFound(reason="No such stream")
        if not source.connected:
            raise web.HTTPServiceUnavailable(reason="The camera is not streaming")
        if source.viewers >= MAX_VIEWERS:
            raise web.HTTPServiceUnavailable(reason="Too many live viewers")
        return await _serve(request, source, coordinator.title)


async def _serve(request: web.Request, source: LiveSource, title: str) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": MIME_TS, "Cache-Control": "no-store"},
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    LOGGER.debug("Live viewer of %s joined", title)
    reason = await serve_viewer(source, response.write)
    LOGGER.debug("Live viewer of %s ended: %s", title, reason)
    if reason != "gone":
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
    return response
