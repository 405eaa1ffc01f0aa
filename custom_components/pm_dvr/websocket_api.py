"""WebSocket commands of the review card: what a camera recorded over a range of time.

`pm_dvr/timeline` answers, for one pm_dvr camera entity and a range of time, the recorded spans
(clips joined across reconnect gaps, so holes in the footage show), its motion intervals (its
motion log) and the events that camera is in. The spans come from the clip index (bisection, then arrays: a month in milliseconds) and the
events from the event catalog, both in a worker thread. `pm_dvr/thumbnail` answers a signed URL
of a still of a camera at a moment (the media view decodes the keyframe at or before it), and
`pm_dvr/playback` one that plays the footage from a moment on (playback.py). Bad
input is answered with a translated `invalid_format` error, never a traceback.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from homeassistant.components import websocket_api
from homeassistant.components.http.auth import async_sign_path
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.const import ERR_INVALID_FORMAT
from homeassistant.components.websocket_api.decorators import async_response, websocket_command
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
import homeassistant.helpers.config_validation as cv
import voluptuous as vol

from .core.media import EventCatalog, EventSummary, event_time, playback_start
from .errors import validation_error
from .media_source import URL_EXPIRY, event_thumbnail_url, frame_url, hub_footage
from .playback import play_url, playback_sources
from .services import cameras_for_entities, moment

TIMELINE_MAX_DAYS = 92
"""The longest range one timeline request may cover (a quarter: what a zoomed-out card shows)."""


@callback
def async_setup(hass: HomeAssistant) -> None:
    """Register the commands (once, whatever the number of hubs)."""
    websocket_api.async_register_command(hass, ws_timeline)
    websocket_api.async_register_command(hass, ws_thumbnail)
    websocket_api.async_register_command(hass, ws_playback)


def _events_between(
    catalog: EventCatalog, camera: str, start: float, end: float
) -> list[EventSummary]:
    """The camera's events that overlap [start, end], oldest first. Blocking.

    Event ids begin with their local start time, so the ids of the range are found by
    bisection; only those event.json files are read (cached by the catalog).
    """
    ids = catalog.ids()[::-1]  # oldest first
    times = [event_time(event_id) or 0.0 for event_id in ids]
    found = []
    # an event may have started up to a day before the range and still run into it
    for event_id in ids[bisect.bisect_left(times, start - 86400) : bisect.bisect_right(times, end)]:
        summary = catalog.summary(event_id)
        if summary is None or camera not in summary.cameras or summary.start is None:
            continue
        if summary.start <= end and (summary.end if summary.end is not None else math.inf) >= start:
            found.append(summary)
    return found


def _event(hass: HomeAssistant, entry_id: str, summary: EventSummary) -> dict[str, Any]:
    thumbnail = event_thumbnail_url(entry_id, summary)
    return {
        "id": summary.event_id,
        "label": summary.label,
        "trigger": summary.trigger,
        "start": summary.start,
        "end": summary.end,
        "state": summary.state,
        "keep": summary.keep,
        "thumbnail": thumbnail and async_sign_path(hass, thumbnail, URL_EXPIRY),
    }


@websocket_command(
    {
        vol.Required("type"): "pm_dvr/timeline",
        vol.Required(ATTR_ENTITY_ID): cv.entity_id,
        vol.Required("start"): moment,
        vol.Required("end"): moment,
    }
)
@async_response
async def ws_timeline(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """A camera's recorded spans and events between start and end."""
    start, end = msg["start"], msg["end"]
    try:
        if not start < end <= start + TIMELINE_MAX_DAYS * 86400:
            raise validation_error("invalid_range", max_days=str(TIMELINE_MAX_DAYS))
        entry, cameras = cameras_for_entities(hass, [msg[ATTR_ENTITY_ID]])
    except ServiceValidationError as err:
        _send_refusal(connection, msg["id"], err)
        return
    camera, index, motion_log = cameras[0].slug, entry.runtime_data.index, cameras[0].motion_log
    catalog = hub_footage(hass, entry).events

    def find() -> tuple[list[tuple[float, float]], list[EventSummary], list[tuple[float, float]]]:
        return (
            index.coverage(camera, start, end),
            _events_between(catalog, camera, start, end),
            motion_log.between(start, end),
        )

    spans, events, motion = await hass.async_add_executor_job(find)
    connection.send_result(
        msg["id"],
        {
            "start": start,
            "end": end,
            "recordings": [[span_start, span_end] for span_start, span_end in spans],
            "motion": [[motion_start, motion_end] for motion_start, motion_end in motion],
            "events": [_event(hass, entry.entry_id, summary) for summary in events],
        },
    )


@websocket_command(
    {
        vol.Required("type"): "pm_dvr/thumbnail",
        vol.Required(ATTR_ENTITY_ID): cv.entity_id,
        vol.Required("time"): moment,
    }
)
@callback
def ws_thumbnail(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """A signed URL of a still of the camera at a moment (the keyframe at or before it)."""
    try:
        entry, cameras = cameras_for_entities(hass, [msg[ATTR_ENTITY_ID]])
    except ServiceValidationError as err:
        _send_refusal(connection, msg["id"], err)
        return
    path = frame_url(entry.entry_id, cameras[0].slug, msg["time"])
    connection.send_result(msg["id"], {"url": async_sign_path(hass, path, URL_EXPIRY)})


@websocket_command(
    {
        vol.Required("type"): "pm_dvr/playback",
        vol.Required(ATTR_ENTITY_ID): cv.entity_id,
        vol.Required("time"): moment,
    }
)
@async_response
async def ws_playback(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """A signed URL that plays the camera's footage from a moment on, and where it begins.

    It begins at the keyframe at or before the moment (a player seeks the rest), or at the next
    recording when the camera recorded nothing then.
    """
    moment_s = msg["time"]
    try:
        entry, cameras = cameras_for_entities(hass, [msg[ATTR_ENTITY_ID]])
        camera = cameras[0].slug
        data = entry.runtime_data

        def find() -> float | None:
            return playback_start(
                playback_sources(data.storage, data.index, camera, moment_s), moment_s
            )

        start = await hass.async_add_executor_job(find)
        if start is None:
            raise validation_error("no_footage")
    except ServiceValidationError as err:
        _send_refusal(connection, msg["id"], err)
        return
    path = play_url(entry.entry_id, camera, moment_s)
    connection.send_result(
        msg["id"],
        {
            "url": async_sign_path(hass, path, URL_EXPIRY),
            "time": moment_s,
            "start": start,
            "mime_type": "video/mp4",
        },
    )


def _send_refusal(connection: ActiveConnection, msg_id: int, err: ServiceValidationError) -> None:
    connection.send_error(
        msg_id,
        ERR_INVALID_FORMAT,
        str(err),
        translation_domain=err.translation_domain,
        translation_key=err.translation_key,
        translation_placeholders=err.translation_placeholders,
    )
