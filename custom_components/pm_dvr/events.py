"""Events glue shared by the services, the Persistent recording switch, MQTT and motion.

Each trigger ends in the same capture manager calls; this module adds what the core cannot know:
the cameras' own pre/post settings, whether they record, and telling entities about changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
import math
import time

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import (
    CONF_MOTION_EVENTS,
    CONF_POST_SECONDS,
    CONF_PRE_SECONDS,
    DEFAULT_POST_SECONDS,
    DEFAULT_PRE_SECONDS,
    DOMAIN,
    LOGGER,
    signal_event,
)
from .coordinator import CameraCoordinator
from .core.capture import CaptureManager, EventInfo
from .core.errors import PmDvrError
from .data import PmDvrConfigEntry
from .errors import translate_errors, validation_error

# Motion results arrive about five times a second; extending the event (and saving the event
# state) on each would be wasted work. At most this often, and at least twice per post-roll so
# the event is extended before its window closes.
MOTION_EXTEND_INTERVAL = 2.0
MIN_MOTION_EXTEND_INTERVAL = 0.2


def capture_manager(entry: PmDvrConfigEntry) -> CaptureManager:
    """The hub's capture manager (set up before any camera or platform)."""
    capture = entry.runtime_data.capture
    assert capture is not None
    return capture


def event_window(cameras: Iterable[CameraCoordinator]) -> tuple[float, float]:
    """Default pre/post seconds: the longest of the cameras' settings, so none is cut short."""
    pre = post = 0.0
    for camera in cameras:
        pre = max(pre, float(camera.settings.get(CONF_PRE_SECONDS, DEFAULT_PRE_SECONDS)))
        post = max(post, float(camera.settings.get(CONF_POST_SECONDS, DEFAULT_POST_SECONDS)))
    return pre, post


def is_recording(camera: CameraCoordinator) -> bool:
    """Whether the camera writes clips now (events link clips, so they need it)."""
    return camera.recorder is not None and camera.recorder.enabled


def check_recording(cameras: Iterable[CameraCoordinator]) -> None:
    """Refuse, translated, a request on a camera whose recording is off."""
    for camera in cameras:
        if not is_recording(camera):
            raise validation_error("recording_off", camera=camera.title)


async def async_start_persistent(
    entry: PmDvrConfigEntry,
    cameras: list[CameraCoordinator],
    label: str | None = None,
    trigger: str = "persistent",
    pre_seconds: float | None = None,
) -> EventInfo:
    """One event for the cameras, from their pre-roll until stopped (core errors raised as is)."""
    pre = event_window(cameras)[0] if pre_seconds is None else pre_seconds
    return await capture_manager(entry).start_persistent(
        [camera.slug for camera in cameras], label, pre, trigger
    )


async def async_stop_persistent(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    cameras: list[CameraCoordinator],
    post_seconds: float | None = None,
) -> list[EventInfo]:
    """End the cameras' persistent recording after each one's post-roll; returns changed events.

    The core announces an event when it starts and completes; this change (the window end is
    now known) is announced here so the switch and the MQTT events topic see it at once.
    """
    capture = capture_manager(entry)
    changed: dict[str, EventInfo] = {}
    for camera in cameras:
        post = event_window([camera])[1] if post_seconds is None else post_seconds
        for info in await capture.stop_persistent([camera.slug], post):
            changed[info.event_id] = info
    for info in changed.values():
        async_dispatcher_send(hass, signal_event(entry.entry_id), info)
    return list(changed.values())


@translate_errors()
async def async_service_start_persistent(
    entry: PmDvrConfigEntry, cameras: list[CameraCoordinator], label: str | None
) -> EventInfo:
    """Start persistent recording for a user (service or switch): errors translated."""
    check_recording(cameras)
    return await async_start_persistent(entry, cameras, label)


@translate_errors()
async def async_service_stop_persistent(
    hass: HomeAssistant, entry: PmDvrConfigEntry, cameras: list[CameraCoordinator]
) -> list[EventInfo]:
    """Stop persistent recording for a user (service or switch): errors translated."""
    return await async_stop_persistent(hass, entry, cameras)


def motion_event_listener(entry: PmDvrConfigEntry, camera: CameraCoordinator) -> Callable[[], None]:
    """A listener for the camera's motion results: opens or extends its motion event.

    Read at each motion, so turning "Capture events on motion" on or off applies at once.
    """
    last = -math.inf

    @callback
    def on_motion() -> None:
        nonlocal last
        if not camera.settings.get(CONF_MOTION_EVENTS, False) or not is_recording(camera):
            return
        _, post = event_window([camera])
        interval = min(MOTION_EXTEND_INTERVAL, max(post / 2, MIN_MOTION_EXTEND_INTERVAL))
        now = time.monotonic()
        if now - last < interval:
            return
        last = now
        entry.async_create_background_task(
            camera.hass, _async_motion_event(entry, camera), f"{DOMAIN} motion event {camera.slug}"
        )

    return on_motion


async def _async_motion_event(entry: PmDvrConfigEntry, camera: CameraCoordinator) -> None:
    pre, post = event_window([camera])
    try:
        await capture_manager(entry).motion(camera.slug, pre, post)
    except PmDvrError as err:
        LOGGER.warning("Motion event of %s not captured: %s", camera.title, err)
