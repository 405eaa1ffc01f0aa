"""Services: capture an event around now on cameras, persistent recording, keep events, export a
time range, sync now, clean up.

Each service's schema checks everything that can be checked without Home Assistant's state:
cameras named (at least one, each a camera entity id), windows in 0..3600 s, labels of at most
64 characters, a target size of 0 GB or more, an event given by id, folder or media-source id, an
export's range (at most EXPORT_MAX_HOURS, the end after the start).
Its refusals are translated validation errors, like the handlers' (unknown camera, recording off,
unknown event): the UI shows their text, REST callers get 400 with it (see errors.py).
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass
import functools
import math
from pathlib import PurePosixPath
from typing import Any

from homeassistant.components.http.auth import async_sign_path
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    split_entity_id,
)
from homeassistant.helpers import config_validation as cv, entity_registry as er
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import (
    CONF_POST_SECONDS,
    CONF_PRE_SECONDS,
    DOMAIN,
)
from .coordinator import CameraCoordinator
from .core.capture import check_label, check_window
from .core.errors import PmDvrError
from .core.layout import events_dir
from .core.media import CAMERA_SLUG, EVENT_ID, Export, export_range
from .data import PmDvrConfigEntry
from .errors import PmDvrValidationError, translate_errors, validation_error
from .events import (
    async_service_start_persistent,
    async_service_stop_persistent,
    check_recording,
    event_window,
)
from .media_source import URL_EXPIRY, export_url

SERVICE_CAPTURE_EVENT = "capture_event"
SERVICE_START_PERSISTENT = "start_persistent_recording"
SERVICE_STOP_PERSISTENT = "stop_persistent_recording"
SERVICE_KEEP_EVENT = "keep_event"
SERVICE_RELEASE_EVENT = "release_event"
SERVICE_SYNC_NOW = "sync_now"
SERVICE_CLEANUP = "cleanup"
SERVICE_EXPORT = "export"
ATTR_LABEL = "label"
ATTR_TARGET_GB = "target_gb"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_EVENT_ID = "event_id"
ATTR_START = "start"
ATTR_END = "end"
EXPORT_MAX_HOURS = 6
"""The longest export: a copy of the footage (6 h at 4 Mbit/s is about 11 GB)."""
MEDIA_SOURCE_PREFIX = f"media-source://{DOMAIN}/"
MAX_ECHO = 100  # characters of a refused value quoted back in a message


# ------------------------------------------------------------------------------------ schemas


class InvalidInput(vol.Invalid):
    """A schema refusal with the translation the user sees (a validator raises it)."""

    def __init__(self, translation_key: str, message: str, **placeholders: str) -> None:
        """`message` is for logs; the user reads the translation with `placeholders`."""
        super().__init__(message)
        # Not `translation_key`: HA 2026's voluptuous (probatio) has one of its own.
        self.message_key = translation_key
        self.message_placeholders = placeholders


class ServiceSchema(vol.Schema):
    """A service's schema whose refusals are translated validation errors.

    HA's REST API discards a schema's message (a bare 400) and its WebSocket API passes it on
    untranslated: raised as `PmDvrValidationError`, both give the translated text.
    """

    def __call__(self, data: Any) -> Any:
        """Validate `data`, or raise the first refusal as a translated validation error."""
        validate: Callable[[Any], Any] = super().__call__  # voluptuous's is not annotated
        try:
            return validate(data)
        except vol.Invalid as err:
            raise _as_validation_error(err) from err


def _as_validation_error(err: vol.Invalid) -> PmDvrValidationError:
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    for error in errors:
        if isinstance(error, InvalidInput):
            return validation_error(error.message_key, **error.message_placeholders)
    # Extra, missing or mistyped fields: voluptuous's own words ("extra keys not allowed @
    # data['x']"), which quote field names, never the values.
    return validation_error("invalid_service_data", error=_echo(err))


def _echo(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_ECHO else f"{text[: MAX_ECHO - 1]}…"


def camera_entities(value: Any) -> list[str]:
    """One or more camera entity ids (a list, or text separated by commas), each once."""
    entity_ids: list[str] = []
    for item in cv.ensure_list_csv(value):
        try:
            entity_id = cv.entity_id(item)
        except vol.Invalid as err:
            raise InvalidInput("unknown_camera_entity", str(err), entity_id=_echo(item)) from err
        if split_entity_id(entity_id)[0] != Platform.CAMERA:
            raise InvalidInput(
                "unknown_camera_entity", "not a camera entity", entity_id=_echo(entity_id)
            )
        if entity_id not in entity_ids:
            entity_ids.append(entity_id)
    if not entity_ids:
        raise InvalidInput("no_camera", "no camera given")
    return entity_ids


def _number(value: Any) -> Any:
    """Text that reads as a number (a template's output) as that number; the rest as it is."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def _core_check[T](check: Callable[[Any], T]) -> Callable[[Any], T]:
    """A core check as a validator: the core's error, translated, is the schema's refusal."""

    def validate(value: Any) -> T:
        try:
            return check(value)
        except PmDvrError as err:
            raise InvalidInput(err.translation_key, str(err), error=str(err)) from err

    return validate


def seconds(name: str) -> Callable[[Any], float]:
    """Seconds before or after an event: 0 to 3600 (the core's range)."""
    check = _core_check(functools.partial(check_window, name=name))
    return lambda value: check(_number(value))


_check_label = _core_check(check_label)


def event_label(value: Any) -> str | None:
    """A label of at most 64 printable characters (the core's rule); none when empty."""
    return None if value is None else _check_label(cv.string(value))


def moment(value: Any) -> float:
    """A point in time: seconds since 1970, or an ISO 8601 date and time (naive: HA's zone)."""
    value = _number(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and (parsed := dt_util.parse_datetime(value)) is not None:
        return dt_util.as_utc(parsed).timestamp()
    raise InvalidInput(
        "invalid_time",
        "expected seconds since 1970 or an ISO 8601 date and time",
        time=_echo(value),
    )


def one_camera(value: Any) -> str:
    """Exactly one camera entity id."""
    entity_ids = camera_entities(value)
    if len(entity_ids) > 1:
        raise InvalidInput("one_camera", "one camera only")
    return entity_ids[0]


def export_span(data: dict[str, Any]) -> dict[str, Any]:
    """An export's end comes after its start, at most EXPORT_MAX_HOURS later."""
    if not data[ATTR_START] < data[ATTR_END] <= data[ATTR_START] + EXPORT_MAX_HOURS * 3600:
        raise InvalidInput(
            "invalid_export_range", "bad export range", max_hours=str(EXPORT_MAX_HOURS)
        )
    return data


def target_size(value: Any) -> float:
    """A size in GB, 0 or more."""
    number = _number(value)
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or not math.isfinite(number)
        or number < 0
    ):
        raise InvalidInput("invalid_target", "not a size of 0 GB or more", target_gb=_echo(value))
    return float(number)


@dataclass(frozen=True, slots=True)
class EventRef:
    """An event as a user names it: the id, and the hub it belongs to when the name says."""

    event_id: str
    entry_id: str | None = None  # from a media-source id
    folder: PurePosixPath | None = None  # the events folder, from the event's own folder


def parse_event_ref(value: str) -> EventRef | None:
    """An event id (`event_id` of capture_event's answer, the pm_dvr_event event or a Last event
    sensor), its folder (`path` there), or its media-source id from the media browser; or None.
    """
    text = value.strip()
    if text.startswith(MEDIA_SOURCE_PREFIX):
        # <entry>/event/<id>, or one camera's video in it: <entry>/event/<id>/<camera>
        parts = text.removeprefix(MEDIA_SOURCE_PREFIX).split("/")
        if (
            len(parts) in (3, 4)
            and parts[0]
            and parts[1] == "event"
            and EVENT_ID.fullmatch(parts[2])
            and (len(parts) == 3 or CAMERA_SLUG.fullmatch(parts[3]))
        ):
            return EventRef(parts[2], entry_id=parts[0])
        return None
    if text.startswith("/"):
        path = PurePosixPath(text)
        if ".." not in path.parts and EVENT_ID.fullmatch(path.name):
            return EventRef(path.name, folder=path.parent)
        return None
    return EventRef(text) if EVENT_ID.fullmatch(text) else None


def event_reference(value: Any) -> str:
    """Text that `parse_event_ref` reads."""
    text = cv.string(value).strip()
    if parse_event_ref(text) is None:
        raise InvalidInput(
            "invalid_event", "not an event id, folder or media-source id", event=_echo(text)
        )
    return text


CAPTURE_SCHEMA = ServiceSchema(
    {
        vol.Required(ATTR_ENTITY_ID): camera_entities,
        vol.Optional(CONF_PRE_SECONDS): seconds(CONF_PRE_SECONDS),
        vol.Optional(CONF_POST_SECONDS): seconds(CONF_POST_SECONDS),
        vol.Optional(ATTR_LABEL): event_label,
    }
)
START_PERSISTENT_SCHEMA = ServiceSchema(
    {vol.Required(ATTR_ENTITY_ID): camera_entities, vol.Optional(ATTR_LABEL): event_label}
)
STOP_PERSISTENT_SCHEMA = ServiceSchema({vol.Required(ATTR_ENTITY_ID): camera_entities})
KEEP_SCHEMA = ServiceSchema(
    {
        vol.Required(ATTR_EVENT_ID): event_reference,
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    }
)
EXPORT_SCHEMA = ServiceSchema(
    vol.All(
        {
            vol.Required(ATTR_ENTITY_ID): one_camera,
            vol.Required(ATTR_START): moment,
            vol.Required(ATTR_END): moment,
        },
        export_span,
    )
)
SYNC_NOW_SCHEMA = ServiceSchema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})
CLEANUP_SCHEMA = ServiceSchema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_TARGET_GB): target_size,
    }
)


# ----------------------------------------------------------------------------------- handlers


def cameras_for_entities(
    hass: HomeAssistant, entity_ids: list[str]
) -> tuple[PmDvrConfigEntry, list[CameraCoordinator]]:
    """The hub and cameras behind pm_dvr camera entities; one hub per call."""
    registry = er.async_get(hass)
    entry: PmDvrConfigEntry | None = None
    cameras: list[CameraCoordinator] = []
    for entity_id in entity_ids:
        entity = registry.async_get(entity_id)
        owner = (
            hass.config_entries.async_get_entry(entity.config_entry_id)
            if entity is not None
            and entity.platform == DOMAIN
            and entity.domain == Platform.CAMERA
            and entity.config_entry_id
            else None
        )
        if (
            entity is None
            or owner is None
            or owner.state is not ConfigEntryState.LOADED
            or entity.config_subentry_id not in owner.runtime_data.cameras
        ):
            raise validation_error("unknown_camera_entity", entity_id=_echo(entity_id))
        if entry is not None and owner is not entry:
            raise validation_error("cameras_of_several_hubs")
        entry = owner
        cameras.append(owner.runtime_data.cameras[entity.config_subentry_id])
    if entry is None:
        raise validation_error("no_camera")
    return entry, cameras


@translate_errors()
async def _async_capture_event(call: ServiceCall) -> ServiceResponse:
    """Link the clips around now into a new event folder; answer with its id and folder."""
    entry, cameras = cameras_for_entities(call.hass, call.data[ATTR_ENTITY_ID])
    check_recording(cameras)
    default_pre, default_post = event_window(cameras)
    capture = entry.runtime_data.capture
    assert capture is not None
    event = await capture.capture(
        [camera.slug for camera in cameras],
        call.data.get(CONF_PRE_SECONDS, default_pre),
        call.data.get(CONF_POST_SECONDS, default_post),
        call.data.get(ATTR_LABEL),
        trigger="service",
    )
    response: dict[str, Any] = {"event_id": event.event_id, "path": str(event.path)}
    return response


async def _async_start_persistent(call: ServiceCall) -> ServiceResponse:
    """Link every clip of the cameras (from their pre-roll on) into one event until stopped."""
    entry, cameras = cameras_for_entities(call.hass, call.data[ATTR_ENTITY_ID])
    event = await async_service_start_persistent(entry, cameras, call.data.get(ATTR_LABEL))
    response: dict[str, Any] = {"event_id": event.event_id, "path": str(event.path)}
    return response


async def _async_stop_persistent(call: ServiceCall) -> ServiceResponse:
    """End the cameras' persistent recording after their post-roll (no-op when not recording)."""
    entry, cameras = cameras_for_entities(call.hass, call.data[ATTR_ENTITY_ID])
    events = await async_service_stop_persistent(call.hass, entry, cameras)
    response: dict[str, Any] = {
        "events": [{"event_id": event.event_id, "path": str(event.path)} for event in events]
    }
    return response


async def _async_event_hub(
    hass: HomeAssistant, ref: EventRef, entry_id: str | None
) -> PmDvrConfigEntry:
    """The hub with the event: the one the call or the event's name gives, else the one loaded
    hub whose events folder has it."""
    if (entry_id := entry_id or ref.entry_id) is not None:
        return loaded_hub(hass, entry_id)
    hubs: list[PmDvrConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if not hubs:
        raise validation_error("no_hub_loaded")
    if ref.folder is not None:
        found = [
            hub for hub in hubs if PurePosixPath(events_dir(hub.runtime_data.storage)) == ref.folder
        ]
    else:
        folders = [events_dir(hub.runtime_data.storage) / ref.event_id for hub in hubs]
        present = await hass.async_add_executor_job(lambda: [folder.is_dir() for folder in folders])
        found = [hub for hub, here in zip(hubs, present, strict=True) if here]
    if len(found) > 1:
        raise validation_error("event_of_several_hubs", event_id=ref.event_id)
    if not found:
        raise validation_error("unknown_event", event_id=ref.event_id)
    return found[0]


@translate_errors()
async def _async_set_keep(call: ServiceCall, keep: bool) -> ServiceResponse:
    """Mark an event kept (retention never deletes it) or not; answer with the event."""
    ref = parse_event_ref(call.data[ATTR_EVENT_ID])
    assert ref is not None  # the schema read it
    entry = await _async_event_hub(call.hass, ref, call.data.get(ATTR_CONFIG_ENTRY_ID))
    capture = entry.runtime_data.capture
    assert capture is not None
    if not await capture.mark_keep(ref.event_id, keep):
        raise validation_error("unknown_event", event_id=ref.event_id)
    if entry.runtime_data.retention is not None:
        entry.runtime_data.retention.async_refresh_event(ref.event_id)
    return {
        "event_id": ref.event_id,
        "path": str(capture.events_root / ref.event_id),
        "keep": keep,
    }


async def _async_keep_event(call: ServiceCall) -> ServiceResponse:
    """Retention never deletes the event (until released)."""
    return await _async_set_keep(call, True)


async def _async_release_event(call: ServiceCall) -> ServiceResponse:
    """The event is retention's again, under the event quota and age like any other."""
    return await _async_set_keep(call, False)


@translate_errors()
async def _async_export(call: ServiceCall) -> ServiceResponse:
    """Join a camera's footage of a time range into one MP4 by stream copy (in a worker thread);
    answer with its file, a signed URL to download it and its media-source id."""
    hass = call.hass
    entry, cameras = cameras_for_entities(hass, [call.data[ATTR_ENTITY_ID]])
    camera, data = cameras[0].slug, entry.runtime_data
    start, end = call.data[ATTR_START], call.data[ATTR_END]

    def export() -> Export:
        clips = data.index.covering(camera, start, end)
        # (retention's free-space floor: an export never takes the disk below it)
        usage = data.retention.retention.usage() if data.retention is not None else None
        reserve = (usage.free_floor_bytes or 0) if usage is not None else 0
        return export_range(data.storage, camera, clips, start, end, reserve=reserve)

    result = await hass.async_add_executor_job(export)
    path = export_url(entry.entry_id, camera, result.path.name)
    return {
        "path": str(result.path),
        "url": async_sign_path(hass, path, URL_EXPIRY),
        "media_content_id": f"{MEDIA_SOURCE_PREFIX}{entry.entry_id}/export/{camera}/"
        f"{result.path.name}",
        "start": result.start,
        "end": result.end,
        "bytes": result.size,
    }


@translate_errors()
async def _async_sync_now(call: ServiceCall) -> None:
    """Retry every queued upload now, on one hub or on every loaded hub."""
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    entries: list[PmDvrConfigEntry] = [
        entry
        for entry in call.hass.config_entries.async_loaded_entries(DOMAIN)
        if entry_id is None or entry.entry_id == entry_id
    ]
    if entry_id is not None and not entries:
        raise validation_error("hub_not_loaded", entry_id=_echo(entry_id))
    for entry in entries:
        if entry.runtime_data.sync is not None:
            await entry.runtime_data.sync.async_sync_now()


def loaded_hub(hass: HomeAssistant, entry_id: str | None) -> PmDvrConfigEntry:
    """The hub a call names, or the only loaded hub when it names none."""
    if entry_id is not None:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            raise validation_error("hub_not_loaded", entry_id=_echo(entry_id))
        hub: PmDvrConfigEntry = entry
        return hub
    hubs: list[PmDvrConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if not hubs:
        raise validation_error("no_hub_loaded")
    if len(hubs) > 1:
        raise validation_error("several_hubs")
    return hubs[0]


@translate_errors()
async def _async_cleanup(call: ServiceCall) -> ServiceResponse:
    """Run retention now; answer with what it deleted."""
    entry = loaded_hub(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    retention = entry.runtime_data.retention
    assert retention is not None
    result = await retention.async_cleanup(call.data.get(ATTR_TARGET_GB))
    return {
        "files_deleted": result.files_deleted,
        "bytes_freed": result.bytes_freed,
        "events_deleted": result.events_deleted,
    }


def async_setup_services(hass: HomeAssistant) -> None:
    """Register pm_dvr's services once, whatever the number of hubs."""
    for service, handler, schema in (
        (SERVICE_CAPTURE_EVENT, _async_capture_event, CAPTURE_SCHEMA),
        (SERVICE_START_PERSISTENT, _async_start_persistent, START_PERSISTENT_SCHEMA),
        (SERVICE_STOP_PERSISTENT, _async_stop_persistent, STOP_PERSISTENT_SCHEMA),
        (SERVICE_KEEP_EVENT, _async_keep_event, KEEP_SCHEMA),
        (SERVICE_RELEASE_EVENT, _async_release_event, KEEP_SCHEMA),
        (SERVICE_CLEANUP, _async_cleanup, CLEANUP_SCHEMA),
        (SERVICE_EXPORT, _async_export, EXPORT_SCHEMA),
    ):
        hass.services.async_register(
            DOMAIN, service, handler, schema=schema, supports_response=SupportsResponse.OPTIONAL
        )
    hass.services.async_register(DOMAIN, SERVICE_SYNC_NOW, _async_sync_now, schema=SYNC_NOW_SCHEMA)
