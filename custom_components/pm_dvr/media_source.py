"""The media browser: pm_dvr → Events (newest first), Recordings (camera → day → hour → clips) and
Exports (`pm_dvr.export`'s files, newest first).

Listings come from the in-memory clip index and the events folder's names (core/media.py), paged,
so a year of footage browses as fast as a day. Files are served by an authenticated view that
accepts only strict identifiers (camera slug, clip name, event id) and paths inside the storage
folder; an event plays as one video per camera, remuxed on demand by stream copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
import math
from pathlib import Path

from aiohttp import web
from homeassistant.components.http.auth import async_sign_path
from homeassistant.components.media_player.const import MediaClass, MediaType
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.components.media_source.error import MediaSourceError
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView

from .const import CONF_SLUG, DOMAIN, HUB_DEVICE_NAME, SUBENTRY_CAMERA
from .core.clips import Clip
from .core.media import (
    CAMERA_SLUG,
    DAY,
    EVENT_ID,
    EXPORT_NAME,
    HOUR,
    THUMBNAIL_WIDTH,
    EventCatalog,
    EventSummary,
    MediaCache,
    MediaPathError,
    check_part,
    clip_file,
    day_buckets,
    day_range,
    export_file,
    exports,
    hour_buckets,
    hour_range,
    keyframe_jpeg,
)
from .core.walltime import local_text
from .data import PmDvrConfigEntry
from .playback import Playbacks, moment_in_name, playback_sources

PAGE_SIZE = 100
URL_EXPIRY = timedelta(hours=24)
MIME_MP4 = "video/mp4"
VIEW_URL = "/api/pm_dvr/media/{entry_id}/{kind}/{first}/{second}"


async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
    """Set up the pm_dvr media source (its files' view is registered with the integration)."""
    return PmDvrMediaSource(hass)


@dataclass(slots=True)
class HubFootage:
    """A hub's media helpers (kept while its storage path stays the same)."""

    storage: Path
    events: EventCatalog
    cache: MediaCache


def hub_footage(hass: HomeAssistant, entry: PmDvrConfigEntry) -> HubFootage:
    """A hub's event catalog and media cache, shared by the media browser and the card."""
    store: dict[str, HubFootage] = hass.data.setdefault(f"{DOMAIN}_media", {})
    storage = entry.runtime_data.storage
    found = store.get(entry.entry_id)
    if found is None or found.storage != storage:
        found = store[entry.entry_id] = HubFootage(
            storage, EventCatalog(storage), MediaCache(storage)
        )
    return found


def _loaded_entries(hass: HomeAssistant) -> list[PmDvrConfigEntry]:
    return [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
    ]


def _entry(hass: HomeAssistant, entry_id: str) -> PmDvrConfigEntry:
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
        raise Unresolvable(f"No loaded pm_dvr hub {entry_id[:40]!r}")
    return entry


def _camera_titles(entry: PmDvrConfigEntry) -> dict[str, str]:
    return {
        subentry.data[CONF_SLUG]: subentry.title
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_CAMERA and CONF_SLUG in subentry.data
    }


def _page(identifier: str, parts: list[str]) -> tuple[list[str], int]:
    """Split a trailing `pN` page segment off an identifier's parts."""
    if len(parts) > 1 and parts[-1][:1] == "p" and parts[-1][1:].isdigit():
        page = int(parts[-1][1:])
        if page < 1:
            raise Unresolvable(f"Invalid page in {identifier[:80]!r}")
        return parts[:-1], page
    return parts, 1


def _local(timestamp: float) -> str:
    """The local time the clip names and day folders use (the process's time zone), with its
    UTC offset in the hour repeated when the clocks go back (`02:30:00 +02:00`)."""
    return local_text(timestamp)


def _seconds(value: float) -> str:
    value = round(value)
    if value < 60:
        return f"{value} s"
    minutes, seconds = divmod(value, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _directory(
    identifier: str, title: str, children_class: MediaClass = MediaClass.DIRECTORY
) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=identifier,
        media_class=MediaClass.DIRECTORY,
        media_content_type=MediaType.VIDEO,
        title=title,
        can_play=False,
        can_expand=True,
        children_media_class=children_class,
    )


def _video(identifier: str, title: str, thumbnail: str | None = None) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=identifier,
        media_class=MediaClass.VIDEO,
        media_content_type=MIME_MP4,
        title=title,
        can_play=True,
        can_expand=False,
        thumbnail=thumbnail,
    )


def _paged[T](
    node: BrowseMediaSource, items: list[T], page: int, base: str
) -> tuple[list[T], BrowseMediaSource | None]:
    """The items of one page, and a "More" folder leading to the next one when there is one."""
    first = (page - 1) * PAGE_SIZE
    if page > 1 and first >= len(items):
        raise Unresolvable(f"No page {page} in {base[:80]!r}")
    shown = items[first : first + PAGE_SIZE]
    more = None
    if first + PAGE_SIZE < len(items):
        more = _directory(f"{base}/p{page + 1}", f"More ({len(items) - first - PAGE_SIZE})")
    if page > 1:
        node.title = f"{node.title} ({page})"
    return shown, more


class PmDvrMediaSource(MediaSource):
    """Events and recordings of every loaded pm_dvr hub."""

    name = "pm_dvr"

    def __init__(self, hass: HomeAssistant) -> None:
        """One source for all hubs; identifiers start with the hub's entry id."""
        super().__init__(DOMAIN)
        self.hass = hass

    # ------------------------------------------------------------------------- resolve

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """A clip or an event camera, as a signed URL of the pm_dvr view."""
        parts = (item.identifier or "").split("/")
        if len(parts) != 4 or parts[1] not in ("clip", "event", "export"):
            raise Unresolvable(f"Not playable: {item.identifier[:80]!r}")
        entry = _entry(self.hass, parts[0])
        try:
            if parts[1] == "clip":
                camera = check_part(parts[2], CAMERA_SLUG, "camera")
                if _indexed_clip(entry, camera, parts[3]) is None:
                    raise Unresolvable(f"No such clip: {parts[3][:80]!r}")
                path = f"/api/pm_dvr/media/{entry.entry_id}/clip/{camera}/{parts[3]}"
            elif parts[1] == "export":
                camera = check_part(parts[2], CAMERA_SLUG, "camera")
                name = check_part(parts[3], EXPORT_NAME, "export")
                path = export_url(entry.entry_id, camera, name)
            else:
                event_id = check_part(parts[2], EVENT_ID, "event id")
                camera = check_part(parts[3], CAMERA_SLUG, "camera")
                summary = await self.hass.async_add_executor_job(
                    hub_footage(self.hass, entry).events.summary, event_id
                )
                if summary is None or not summary.clips.get(camera):
                    raise Unresolvable(f"No footage of {camera} in event {event_id}")
                path = f"/api/pm_dvr/media/{entry.entry_id}/event/{event_id}/{camera}.mp4"
        except MediaPathError as err:
            raise Unresolvable(str(err)) from err
        return PlayMedia(async_sign_path(self.hass, path, URL_EXPIRY), MIME_MP4)

    # -------------------------------------------------------------------------- browse

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """Browse one level; identifiers: `<entry>/events|event/<id>|rec/<camera>/<day>/<hour>`."""
        identifier = item.identifier or ""
        if not identifier:
            entries = _loaded_entries(self.hass)
            if len(entries) == 1:
                return self._hub(entries[0])
            root = _directory("", self.name or DOMAIN)
            root.children = [self._hub_folder(entry) for entry in entries]
            return root
        try:
            parts, page = _page(identifier, identifier.split("/"))
            return await self._browse(_entry(self.hass, parts[0]), parts[1:], page)
        except (Unresolvable, MediaPathError) as err:
            raise BrowseError(str(err)) from err

    async def _browse(
        self, entry: PmDvrConfigEntry, path: list[str], page: int
    ) -> BrowseMediaSource:
        match path:
            case []:
                return self._hub(entry)
            case ["events"]:
                return await self._events(entry, page)
            case ["exports"]:
                return await self._exports(entry, page)
            case ["event", event_id]:
                return await self._event(entry, check_part(event_id, EVENT_ID, "event id"))
            case ["rec"]:
                return self._cameras(entry)
            case ["rec", camera]:
                return await self._days(entry, check_part(camera, CAMERA_SLUG, "camera"), page)
            case ["rec", camera, day]:
                camera = check_part(camera, CAMERA_SLUG, "camera")
                return await self._hours(entry, camera, check_part(day, DAY, "day"))
            case ["rec", camera, day, hour]:
                camera = check_part(camera, CAMERA_SLUG, "camera")
                day = check_part(day, DAY, "day")
                hour = check_part(hour, HOUR, "hour")
                return await self._clips(entry, camera, day, hour, page)
        raise Unresolvable(f"Unknown media: {'/'.join(path)[:80]!r}")

    def _hub_folder(self, entry: PmDvrConfigEntry) -> BrowseMediaSource:
        return _directory(entry.entry_id, f"{HUB_DEVICE_NAME} {entry.title}")

    def _hub(self, entry: PmDvrConfigEntry) -> BrowseMediaSource:
        node = self._hub_folder(entry)
        node.title = self.name or DOMAIN
        node.children = [
            _directory(f"{entry.entry_id}/events", "Events", MediaClass.VIDEO),
            _directory(f"{entry.entry_id}/rec", "Recordings"),
            _directory(f"{entry.entry_id}/exports", "Exports", MediaClass.VIDEO),
        ]
        return node

    async def _exports(self, entry: PmDvrConfigEntry, page: int) -> BrowseMediaSource:
        """The exports of `pm_dvr.export`, newest first."""
        base = f"{entry.entry_id}/exports"
        node = _directory(base, "Exports", MediaClass.VIDEO)
        found = await self.hass.async_add_executor_job(exports, entry.runtime_data.storage)
        shown, more = _paged(node, found, page, base)
        titles = _camera_titles(entry)
        node.children = [
            _video(
                f"{entry.entry_id}/export/{camera}/{name}",
                f"{titles.get(camera, camera)} {name.removesuffix('.mp4')} ({size / 1e6:.1f} MB)",
            )
            for camera, name, size in shown
        ]
        if more:
            node.children.append(more)
        return node

    async def _events(self, entry: PmDvrConfigEntry, page: int) -> BrowseMediaSource:
        base = f"{entry.entry_id}/events"
        node = _directory(base, "Events")
        events = hub_footage(self.hass, entry).events
        ids = await self.hass.async_add_executor_job(events.ids)
        shown, more = _paged(node, ids, page, base)
        summaries = await self.hass.async_add_executor_job(
            lambda: [events.summary(event_id) for event_id in shown]
        )
        titles = _camera_titles(entry)
        node.children = [
            self._event_folder(entry, summary, titles) for summary in summaries if summary
        ]
        if more:
            node.children.append(more)
        return node

    def _event_folder(
        self, entry: PmDvrConfigEntry, summary: EventSummary, titles: dict[str, str]
    ) -> BrowseMediaSource:
        folder = _directory(
            f"{entry.entry_id}/event/{summary.event_id}",
            _event_title(summary, titles),
            MediaClass.VIDEO,
        )
        folder.thumbnail = event_thumbnail_url(entry.entry_id, summary)
        return folder

    async def _event(self, entry: PmDvrConfigEntry, event_id: str) -> BrowseMediaSource:
        footage = hub_footage(self.hass, entry)
        summary = await self.hass.async_add_executor_job(footage.events.summary, event_id)
        if summary is None:
            raise Unresolvable(f"No such event: {event_id}")
        titles = _camera_titles(entry)
        node = self._event_folder(entry, summary, titles)
        duration = summary.duration()
        node.children = [
            _video(
                f"{entry.entry_id}/event/{event_id}/{camera}",
                titles.get(camera, camera)
                + (f" ({_seconds(duration)})" if duration is not None else ""),
                node.thumbnail,
            )
            for camera in summary.cameras
            if summary.clips.get(camera)
        ]
        return node

    def _cameras(self, entry: PmDvrConfigEntry) -> BrowseMediaSource:
        node = _directory(f"{entry.entry_id}/rec", "Recordings")
        titles = _camera_titles(entry)
        index = entry.runtime_data.index
        node.children = [
            _directory(f"{entry.entry_id}/rec/{camera}", titles.get(camera, camera))
            for camera in sorted(index.cameras(), key=lambda slug: titles.get(slug, slug))
        ]
        return node

    async def _starts(self, entry: PmDvrConfigEntry, camera: str) -> Sequence[float]:
        """A camera's clip start times: copied in the executor (a copy per clip, off the loop);
        buckets then take one bisection per day or hour."""
        return await self.hass.async_add_executor_job(entry.runtime_data.index.starts, camera)

    async def _days(self, entry: PmDvrConfigEntry, camera: str, page: int) -> BrowseMediaSource:
        base = f"{entry.entry_id}/rec/{camera}"
        node = _directory(base, _camera_titles(entry).get(camera, camera))
        days = day_buckets(await self._starts(entry, camera))[::-1]
        shown, more = _paged(node, days, page, base)
        node.children = [
            _directory(f"{base}/{day.key}", f"{day.key} ({day.count} clips)") for day in shown
        ]
        if more:
            node.children.append(more)
        return node

    async def _hours(self, entry: PmDvrConfigEntry, camera: str, day: str) -> BrowseMediaSource:
        base = f"{entry.entry_id}/rec/{camera}/{day}"
        title = _camera_titles(entry).get(camera, camera)
        node = _directory(base, f"{title} {day}")
        starts = await self._starts(entry, camera)
        lo, hi = day_range(starts, day)
        node.children = [
            _directory(
                f"{base}/{hour.key}", f"{hour.key}:00 ({hour.count} clips)", MediaClass.VIDEO
            )
            for hour in hour_buckets(starts, lo, hi)[::-1]
        ]
        return node

    async def _clips(
        self, entry: PmDvrConfigEntry, camera: str, day: str, hour: str, page: int
    ) -> BrowseMediaSource:
        base = f"{entry.entry_id}/rec/{camera}/{day}/{hour}"
        title = _camera_titles(entry).get(camera, camera)
        node = _directory(base, f"{title} {day} {hour}:00", MediaClass.VIDEO)
        starts = await self._starts(entry, camera)
        lo, hi = hour_range(starts, day, hour)
        clips: list[Clip] = []
        if lo < hi:  # only this hour's clips become objects
            t1 = starts[hi] if hi < len(starts) else math.inf
            clips = await self.hass.async_add_executor_job(
                entry.runtime_data.index.starting, camera, starts[lo], t1
            )
        shown, more = _paged(node, clips, page, base)
        node.children = [
            _video(
                f"{entry.entry_id}/clip/{camera}/{clip.path.name}",
                f"{_local(clip.start)[11:]} ({_seconds(clip.duration)})",
            )
            for clip in shown
        ]
        if more:
            node.children.append(more)
        return node


def _event_title(summary: EventSummary, titles: dict[str, str]) -> str:
    cameras = ", ".join(titles.get(camera, camera) for camera in summary.cameras)
    when = _local(summary.start) if summary.start is not None else summary.event_id[:15]
    label = summary.label or summary.trigger
    title = " · ".join(part for part in (when, label, cameras) if part)
    marks = ", ".join(
        mark
        for mark, shown in (("recording", summary.state == "recording"), ("kept", summary.keep))
        if shown
    )
    return f"{title} ({marks})" if marks else title


def event_thumbnail_url(entry_id: str, summary: EventSummary) -> str | None:
    """The media view's path of an event's picture (the first frame of its first clip), None
    while it has no clip."""
    if not any(summary.clips.values()):
        return None
    return f"/api/{DOMAIN}/media/{entry_id}/thumbnail/{summary.event_id}/thumbnail.jpg"


def export_url(entry_id: str, camera: str, name: str) -> str:
    """The media view's path of an export's file."""
    return f"/api/{DOMAIN}/media/{entry_id}/export/{camera}/{name}"


def frame_url(entry_id: str, camera: str, moment: float) -> str:
    """The media view's path of a still at a moment (milliseconds since 1970 in the name)."""
    return f"/api/{DOMAIN}/media/{entry_id}/frame/{camera}/{round(moment * 1000)}.jpg"


def _indexed_clip(entry: PmDvrConfigEntry, camera: str, name: str) -> Clip | None:
    """The clip of the index with this name (the index is the only source of clip paths)."""
    from .core.clips import clip_starts_from_name

    starts = clip_starts_from_name(name)
    if starts is None:
        raise MediaPathError(f"invalid clip name: {name[:80]!r}")
    # Live clips start at their first packet's time; the name carries it to the second (a name
    # of a repeated hour written without an offset marker may be either pass).
    for start in starts:
        for clip in entry.runtime_data.index.covering(camera, start, start + 1):
            if clip.path.name == name:
                return clip
    return None


class PmDvrMediaView(HomeAssistantView):
    """Serves clips, event videos, event thumbnails, stills, playback and exports to
    authenticated users only."""

    url = VIEW_URL
    name = "api:pm_dvr:media"
    requires_auth = True

    def __init__(self, hass: HomeAssistant) -> None:
        """The view reads hubs from the config entries at each request."""
        self.hass = hass
        self.playbacks = Playbacks(hass)

    async def get(
        self, request: web.Request, entry_id: str, kind: str, first: str, second: str
    ) -> web.StreamResponse:
        """One file, or 404 for anything that does not name footage inside the storage folder."""
        try:
            entry = _entry(self.hass, entry_id)
            if kind == "clip":
                path = await self._clip(entry, first, second)
            elif kind == "export":
                path = await self.hass.async_add_executor_job(
                    export_file, entry.runtime_data.storage, first, second
                )
            elif kind == "event" and second.endswith(".mp4"):
                path = await self._event_video(entry, first, second.removesuffix(".mp4"))
            elif kind == "frame" and (moment := moment_in_name(second, ".jpg")) is not None:
                jpeg = await self._frame(entry, check_part(first, CAMERA_SLUG, "camera"), moment)
                return web.Response(body=jpeg, content_type="image/jpeg")
            elif kind == "play" and (moment := moment_in_name(second, ".mp4")) is not None:
                return await self._play(
                    request, entry, check_part(first, CAMERA_SLUG, "camera"), moment
                )
            elif kind == "thumbnail" and second == "thumbnail.jpg":
                jpeg = await self._thumbnail(entry, first)
                return web.Response(body=jpeg, content_type="image/jpeg")
            else:
                raise Unresolvable("unknown media kind")
        except (MediaSourceError, MediaPathError) as err:
            raise web.HTTPNotFound(reason=str(err)[:120]) from err
        except OSError as err:
            raise web.HTTPInternalServerError(reason=err.strerror) from err
        return web.FileResponse(path, headers={"Content-Type": MIME_MP4})

    async def _clip(self, entry: PmDvrConfigEntry, camera: str, name: str) -> Path:
        check_part(camera, CAMERA_SLUG, "camera")
        clip = _indexed_clip(entry, camera, name)
        if clip is None:
            raise Unresolvable("no such clip")
        return await self.hass.async_add_executor_job(clip_file, entry.runtime_data.storage, clip)

    async def _event_video(self, entry: PmDvrConfigEntry, event_id: str, camera: str) -> Path:
        check_part(event_id, EVENT_ID, "event id")
        check_part(camera, CAMERA_SLUG, "camera")
        footage = hub_footage(self.hass, entry)

        def make() -> Path:
            summary = footage.events.summary(event_id)
            if summary is None:
                raise MediaPathError("no such event")
            clips = footage.events.clip_paths(summary, camera)
            created = footage.cache.event_video(event_id, camera, clips)
            footage.cache.prune(set(footage.events.ids()), keep=created)
            return created

        return await self.hass.async_add_executor_job(make)

    async def _frame(self, entry: PmDvrConfigEntry, camera: str, moment: float) -> bytes:
        """A still of the camera at a moment: the keyframe at or before it in its clip."""
        storage, index = entry.runtime_data.storage, entry.runtime_data.index

        def make() -> bytes | None:
            for clip in index.covering(camera, moment, moment):
                if clip.start <= moment <= clip.end:
                    path = clip_file(storage, clip)
                    return keyframe_jpeg(path, moment - clip.start, THUMBNAIL_WIDTH)
            return None

        jpeg = await self.hass.async_add_executor_job(make)
        if jpeg is None:
            raise web.HTTPNotFound(reason="no recording at that moment")
        return jpeg

    async def _play(
        self, request: web.Request, entry: PmDvrConfigEntry, camera: str, moment: float
    ) -> web.StreamResponse:
        """The footage from a moment on, joined while it plays (playback.py)."""
        data = entry.runtime_data
        sources = await self.hass.async_add_executor_job(
            playback_sources, data.storage, data.index, camera, moment
        )
        if not sources:
            raise web.HTTPNotFound(reason="no recording from that moment")
        return await self.playbacks.serve(request, sources, moment)

    async def _thumbnail(self, entry: PmDvrConfigEntry, event_id: str) -> bytes:
        check_part(event_id, EVENT_ID, "event id")
        footage = hub_footage(self.hass, entry)

        def make() -> bytes | None:
            summary = footage.events.summary(event_id)
            if summary is None:
                raise MediaPathError("no such event")
            for camera in summary.cameras:
                if clips := footage.events.clip_paths(summary, camera):
                    return footage.cache.thumbnail(event_id, clips[0])
            return None

        jpeg = await self.hass.async_add_executor_job(make)
        if jpeg is None:
            raise web.HTTPNotFound(reason="no picture")
        return jpeg
