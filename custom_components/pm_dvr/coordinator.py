"""Coordinators: one per camera (its session and recorder), one for the hub (storage)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import secrets
import time
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util
import numpy as np
from numpy.typing import NDArray

from .const import (
    CONF_AUDIO,
    CONF_DETECT_STREAM_URL,
    CONF_MOTION,
    CONF_MOTION_MIN_SIZE,
    CONF_MOTION_OFF_DELAY,
    CONF_MOTION_THRESHOLD,
    CONF_MOTION_ZONES,
    CONF_NAME,
    CONF_RECORD,
    CONF_SEGMENT_SECONDS,
    CONF_SLUG,
    CONF_STREAM_URL,
    DEFAULT_MOTION_OFF_DELAY,
    DEFAULT_SEGMENT_SECONDS,
    DOMAIN,
    LOGGER,
)
from .core.clips import Clip
from .core.live import LiveSource
from .core.motion import MotionConfig, MotionResult, MotionWorker, Zone, draw_outlines
from .core.motion_log import MotionLog
from .core.motion_sink import MotionSink, motion_config, parse_zones
from .core.probe import StreamInfo
from .core.recorder import Recorder, RecorderState
from .core.stream import SessionState, StreamSession
from .data import PmDvrConfigEntry
from .errors import translate_errors

STATS_INTERVAL = timedelta(seconds=10)
HUB_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A camera's state as entities see it: immutable, built from the session's counters."""

    state: SessionState
    info: StreamInfo | None
    last_error: str | None
    bitrate_kbps: float | None
    fps: float | None
    recording: RecorderState | None
    recording_enabled: bool
    motion_enabled: bool
    dropped_packets: int
    clips: int

    @property
    def available(self) -> bool:
        """Whether the camera is streaming."""
        return self.state is SessionState.STREAMING


@dataclass(slots=True)
class MotionState:
    """What the motion entities show; changed on the event loop only."""

    detected: bool = False
    image: bytes | None = None
    image_time: datetime | None = None


type Picture = bytes | NDArray[np.uint8]
"""A motion picture: drawn (the JPEG) or still to draw (the frame)."""


@dataclass(slots=True)
class _Candidate:
    """A motion event's best picture so far, and whether it is the one shown."""

    area: float
    time: datetime
    result: MotionResult
    picture: Picture
    shown: bool = False


def _zones(settings: Mapping[str, Any]) -> tuple[Zone, ...]:
    """The camera's zones (the flow validated them; anything else is ignored with a warning)."""
    try:
        return parse_zones(settings.get(CONF_MOTION_ZONES))
    except (TypeError, ValueError) as err:
        LOGGER.warning("Ignoring invalid motion zones: %s", err)
        return ()


def motion_config_of(settings: Mapping[str, Any]) -> MotionConfig:
    """The detector configuration stored in a camera's settings."""
    return motion_config(
        settings.get(CONF_MOTION_THRESHOLD), settings.get(CONF_MOTION_MIN_SIZE), _zones(settings)
    )


class CameraCoordinator(DataUpdateCoordinator[CameraStatus]):
    """One camera: its session (thread), its recorder, and the status pushed on every change."""

    config_entry: PmDvrConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PmDvrConfigEntry,
        subentry: ConfigSubentry,
        *,
        recording_enabled: bool = True,
        motion_enabled: bool = True,
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {subentry.title}",
            update_interval=STATS_INTERVAL,
        )
        self.subentry_id = subentry.subentry_id
        self.settings: MappingProxyType[str, Any] = subentry.data
        self.title = subentry.title
        self.slug: str = subentry.data[CONF_SLUG]
        self.entities: list[Entity] = []
        self.session = StreamSession(
            subentry.data[CONF_NAME], subentry.data[CONF_STREAM_URL], on_state=self._on_change
        )
        # Live viewers (HA's stream, go2rtc, players) hang off the same connection. First sink:
        # the recorder rewrites packets in place, and live wants the camera's own times.
        audio = subentry.data.get(CONF_AUDIO, "auto")
        self.live = LiveSource(
            self.slug, audio=audio, on_watching=self._watching_callback(self.session)
        )
        self.session.add_sink(self.live)
        # A secret per camera life: HA's stream worker and go2rtc open the live URL with it.
        self.live_token = secrets.token_urlsafe(32)
        self.detect_live: LiveSource | None = None
        self.motion = MotionState()
        self.motion_enabled = False
        self.motion_worker: MotionWorker | None = None
        self.motion_sink: MotionSink | None = None
        self.detect_session: StreamSession | None = None
        self._motion_off: Callable[[], None] | None = None
        # Called on the loop for every motion result (motion events open and extend from here).
        self.motion_listeners: list[Callable[[], None]] = []
        # The Last motion picture of a motion event (Motion on until off): its first outlined
        # frame at once, its best one (most outlined area) when it ends; nothing in between.
        # Written on the loop, read by the worker: a new value makes it draw a first picture.
        self._picture_event = 0
        self._worker_event = -1  # worker thread only: the event it drew a first picture for ...
        self._worker_area = 0.0  # ... and the largest area it has handed over since
        self._best: _Candidate | None = None  # loop only: the current event's best picture
        self._event_shown = False  # loop only: whether the current event's picture is up
        # The motion interval under way (wall clock: its first and its latest moving frame),
        # logged for the review timeline when motion ends.
        self.motion_log = MotionLog(entry.runtime_data.storage, self.slug)
        self._motion_since: float | None = None
        self._motion_last = 0.0
        self._index = entry.runtime_data.index
        self._stopped = False
        if subentry.data.get(CONF_MOTION, True):
            self.motion_worker = MotionWorker(
                motion_config_of(subentry.data),
                self._on_motion_result,
                name=f"pm_dvr motion {self.slug}",
            )
            self.motion_sink = MotionSink(self.motion_worker)
            if detect_url := subentry.data.get(CONF_DETECT_STREAM_URL):
                # The cheap path: the camera's sub-stream, its own connection, no recorder.
                self.detect_session = StreamSession(
                    f"{subentry.data[CONF_NAME]} (motion)", detect_url
                )
                # The sub-stream is a live source too, on the same (one) connection.
                self.detect_live = LiveSource(
                    f"{self.slug} (sub-stream)",
                    audio=audio,
                    on_watching=self._watching_callback(self.detect_session),
                )
                self.detect_session.add_sink(self.detect_live)
            if motion_enabled:
                # Before the recorder: sinks run in order (the sink copies what it queues anyway).
                self.motion_enabled = True
                (self.detect_session or self.session).add_sink(self.motion_sink)
        self.recorder: Recorder | None = None
        if subentry.data.get(CONF_RECORD, True):
            self.recorder = Recorder(
                self.slug,
                entry.runtime_data.storage,
                entry.runtime_data.index,
                entry.options.get(CONF_SEGMENT_SECONDS, DEFAULT_SEGMENT_SECONDS),
                audio=audio,
                enabled=recording_enabled,
                on_state=self._on_change,
                name=subentry.data[CONF_NAME],
            )
            self.session.add_sink(self.recorder)
        self._last_sample: tuple[float, int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.data = self._status()

    @property
    def watching(self) -> bool:
        """Whether anyone watches the camera live (HA's stream counts as one)."""
        return self.live.viewers > 0

    def live_source(self, stream: str) -> LiveSource | None:
        """The live source of the main stream, or of the sub-stream when there is one."""
        return self.live if stream == "main" else self.detect_live

    def _watching_callback(self, session: StreamSession) -> Callable[[bool], None]:
        """Called in the session thread when the first viewer joins or the last one leaves."""

        def watching(active: bool) -> None:
            # Viewers want each packet at once; without them the session reads in bursts.
            session.low_latency = active
            self._on_change()

        return watching

    async def async_start(self) -> None:
        """Run the session as a background task of the entry, so unload or shutdown ends it.

        An unreachable camera is retried in the session thread, never raised here.
        """
        self._task = self.config_entry.async_create_background_task(
            self.hass, self._async_run_session(), f"{DOMAIN} session {self.slug}"
        )

    @property
    def motion_off_delay(self) -> float:
        """Seconds the motion sensor stays on after the last motion."""
        return float(self.settings.get(CONF_MOTION_OFF_DELAY, DEFAULT_MOTION_OFF_DELAY))

    async def _async_run_session(self) -> None:
        self.session.start()
        if self.detect_session is not None:
            self.detect_session.start()
        try:
            await asyncio.Event().wait()
        finally:
            # Joining the threads (and closing the clip) is blocking: in the executor.
            await self.hass.async_add_executor_job(self._stop_threads)

    def _stop_threads(self) -> None:
        if self.detect_session is not None:
            self.detect_session.stop()
        self.session.stop()
        if self.motion_worker is not None:
            self.motion_worker.stop()

    async def async_stop(self) -> None:
        """Stop the session and wait until its thread has ended and its clip is closed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # Results queued by the worker before it stopped must not start a new timer.
        self._stopped = True
        self._cancel_motion_off()
        self._async_log_motion()  # (motion still on: its interval ends here)
        self._best = None

    async def async_snapshot(self, width: int | None, height: int | None) -> bytes | None:
        """JPEG of the latest keyframe, decoded in the executor."""
        return await self.hass.async_add_executor_job(self.session.snapshot_jpeg, width, height)

    @callback
    def async_set_recording(self, enabled: bool) -> None:
        """The Recording switch: off closes the clip in progress, the session stays up."""
        if self.recorder is not None:
            self.recorder.set_enabled(enabled)
            self._push()

    @callback
    def async_set_motion(self, enabled: bool) -> None:
        """The Motion detection switch: off detaches the sink, so nothing is decoded."""
        if self.motion_sink is None or enabled == self.motion_enabled:
            return
        self.motion_enabled = enabled
        session = self.detect_session or self.session
        if enabled:
            session.add_sink(self.motion_sink)
        else:
            session.remove_sink(self.motion_sink)
            self._cancel_motion_off()
            if self.motion.detected:
                self.motion.detected = False
                self._async_end_motion_event()
        self._push()

    @callback
    def async_apply_motion_settings(self, settings: Mapping[str, Any]) -> None:
        """Motion-only changes of the camera's settings, applied without a restart."""
        self.settings = MappingProxyType(dict(settings))
        if self.motion_worker is not None:
            self.motion_worker.update_config(motion_config_of(settings))
        self.async_update_listeners()

    @callback
    def async_tune_motion(self, **changes: int | float) -> None:
        """Live tuning from the Motion numbers: the worker now, the subentry for later."""
        assert self.motion_worker is not None
        config = self.motion_worker.config
        self.motion_worker.update_config(
            motion_config(
                int(changes.get(CONF_MOTION_THRESHOLD, config.threshold)),
                float(changes.get(CONF_MOTION_MIN_SIZE, config.min_area_percent)),
                config.zones,
            )
        )
        entry = self.config_entry
        subentry = entry.subentries[self.subentry_id]
        # The update listener sees a motion-only change and applies it without a restart.
        self.hass.config_entries.async_update_subentry(
            entry, subentry, data={**subentry.data, **changes}
        )

    def _on_motion_result(self, result: MotionResult, image: NDArray[np.uint8] | None) -> None:
        """Called in the motion worker thread: draw an event's first picture, then hop to the loop.

        Of the event's later frames only one that outlines more than any before it is handed
        over, undrawn (the frame is the worker's own copy): the one chosen is drawn at the end.
        """
        if not result.motion:
            return
        area = result.area
        picture: Picture | None = None
        if image is not None:
            event = self._picture_event
            if event != self._worker_event:
                self._worker_event, self._worker_area = event, area
                picture = draw_outlines(image, result)
            elif area > self._worker_area:
                self._worker_area = area
                picture = image
        self.hass.loop.call_soon_threadsafe(self._async_on_motion, result, area, picture)

    @callback
    def _async_on_motion(self, result: MotionResult, area: float, picture: Picture | None) -> None:
        if self._stopped or not self.motion_enabled:
            if isinstance(picture, bytes):  # a first picture not shown: the worker draws anew
                self._picture_event += 1
            return
        changed = not self.motion.detected
        self._motion_last = time.time()
        if self._motion_since is None:
            self._motion_since = self._motion_last
        self.motion.detected = True
        if picture is not None:
            now = dt_util.utcnow()
            best = self._best
            if isinstance(picture, bytes) and not self._event_shown:
                # The event's first picture, shown at once: a notification on Motion gets it.
                self._event_shown = changed = True
                self._show_picture(picture, now)
                if best is None or area >= best.area:
                    self._best = _Candidate(area, now, result, picture, shown=True)
            elif best is None or area > best.area:
                self._best = _Candidate(area, now, result, picture)
        self._cancel_motion_off()
        self._motion_off = async_call_later(
            self.hass, self.motion_off_delay, self._async_motion_off
        )
        for listener in self.motion_listeners:
            listener()
        if changed:
            self.async_update_listeners()

    @callback
    def _async_motion_off(self, _now: datetime) -> None:
        self._motion_off = None
        self.motion.detected = False
        self._async_end_motion_event()
        self.async_update_listeners()

    @callback
    def _async_end_motion_event(self) -> None:
        """Motion went off: log its interval, and show the event's best picture if it is not
        the one up already."""
        self._async_log_motion()
        self._picture_event += 1  # the worker draws the next event's first picture afresh
        best, self._best, self._event_shown = self._best, None, False
        if best is None or best.shown:
            return
        if isinstance(best.picture, bytes):
            self._show_picture(best.picture, best.time)
            return
        # A tracked task (one JPEG to encode): unloading the entry waits for it. Not started
        # eagerly: results the worker sent before the event ended are handled first.
        self.config_entry.async_create_task(
            self.hass,
            self._async_draw_best(best.picture, best.result, best.time),
            f"{DOMAIN} motion picture {self.slug}",
            eager_start=False,
        )

    @callback
    def _async_log_motion(self) -> None:
        """Append the interval under way to the camera's motion log (in the executor)."""
        since, self._motion_since = self._motion_since, None
        if since is None:
            return
        heads = [clip.start for clip in self._index.heads() if clip.camera == self.slug]
        self.hass.async_add_executor_job(
            self.motion_log.append, since, self._motion_last, heads[0] if heads else None
        )

    async def _async_draw_best(
        self, frame: NDArray[np.uint8], result: MotionResult, taken: datetime
    ) -> None:
        """Draw an ended event's best frame in the executor, then show it.

        Unless a newer event's first picture is up by then (a result sent before the event
        ended started the next one): that one stays.
        """
        if self._event_shown:
            return
        jpeg = await self.hass.async_add_executor_job(draw_outlines, frame, result)
        if not self._stopped and not self._event_shown:
            self._show_picture(jpeg, taken)
            self.async_update_listeners()

    def _show_picture(self, jpeg: bytes, taken: datetime) -> None:
        """What the Last motion image shows (its state is ``taken``: one change, one log entry)."""
        self.motion.image = jpeg
        self.motion.image_time = taken

    def _cancel_motion_off(self) -> None:
        if self._motion_off is not None:
            self._motion_off()
            self._motion_off = None

    def _on_change(self, *_: object) -> None:
        """Called from the session thread (or the recorder's): hop to the loop."""
        self.hass.loop.call_soon_threadsafe(self._push)

    @callback
    def _push(self) -> None:
        self.async_set_updated_data(self._status())

    @translate_errors("update")
    async def _async_update_data(self) -> CameraStatus:
        return self._status()

    def _status(self) -> CameraStatus:
        """Derive rates from the session's counters since the previous sample."""
        stats = self.session.stats
        now = self.hass.loop.time()
        bitrate = fps = None
        sample = (now, stats.total_bytes, stats.video_packets)
        if self._last_sample is not None and now > self._last_sample[0]:
            elapsed = now - self._last_sample[0]
            bitrate = round((sample[1] - self._last_sample[1]) * 8 / 1000 / elapsed, 1)
            fps = round((sample[2] - self._last_sample[2]) / elapsed, 2)
        self._last_sample = sample
        recorder = self.recorder
        recorder_stats = recorder.stats if recorder else None
        return CameraStatus(
            state=self.session.state,
            info=self.session.info,
            last_error=stats.last_error,
            bitrate_kbps=bitrate,
            fps=fps,
            recording=recorder.state if recorder else None,
            recording_enabled=bool(recorder and recorder.enabled),
            motion_enabled=self.motion_enabled,
            dropped_packets=recorder_stats.dropped_packets if recorder_stats else 0,
            clips=recorder_stats.clips if recorder_stats else 0,
        )


@dataclass(frozen=True, slots=True)
class HubStatus:
    """The hub's storage figures."""

    recordings_bytes: int
    clips: int
    events_bytes: int | None = None
    free_bytes: int | None = None
    oldest_recording: datetime | None = None


class HubCoordinator(DataUpdateCoordinator[HubStatus]):
    """Storage figures of the hub, refreshed when clips close (throttled) and every minute."""

    config_entry: PmDvrConfigEntry

    def __init__(self, hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} hub",
            update_interval=HUB_INTERVAL,
        )
        self._refresh_pending = False
        self.data = self._status()

    def on_clip_added(self, clip: Clip) -> None:
        """Called from recorder threads; coalesces bursts into one refresh on the loop."""
        if not self._refresh_pending:
            self._refresh_pending = True
            self.hass.loop.call_soon_threadsafe(self._push)

    @callback
    def _push(self) -> None:
        self._refresh_pending = False
        self.async_set_updated_data(self._status())

    @callback
    def async_refresh_status(self) -> None:
        """Push fresh figures now (retention just ran)."""
        self.async_set_updated_data(self._status())

    @translate_errors("update")
    async def _async_update_data(self) -> HubStatus:
        return self._status()

    def _status(self) -> HubStatus:
        data = self.config_entry.runtime_data
        index = data.index
        # Event bytes and free space come from retention's last run (measured in the executor).
        usage = data.retention.usage if data.retention is not None else None
        oldest = index.oldest_start()
        return HubStatus(
            recordings_bytes=index.total_size(),
            clips=index.count(),
            events_bytes=usage.events_bytes if usage is not None else None,
            free_bytes=usage.free_bytes if usage is not None else None,
            oldest_recording=dt_util.utc_from_timestamp(oldest) if oldest is not None else None,
        )
