"""Playback from any moment: the clips from t onwards joined by stream copy and served as one
fragmented MP4 while the join runs (`core.media.stream_range`).

Chosen over an HLS playlist of the clips: a plain `<video>` plays it in every browser HA
supports, without hls.js, and the first frame arrives as soon as the first GOP is copied (the
header and a fragment per keyframe), whatever the length that follows. `pm_dvr/playback` answers
the signed URL and where the video begins (the keyframe at or before t), so a player seeks the
remaining fraction of a GOP itself.

The join runs in a thread of its own, not the executor: it lives as long as the viewer reads
(HTTP back-pressure holds it), and the executor's threads are shared by all of Home Assistant.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from pathlib import Path
import threading
from typing import Final

from aiohttp import web
import av
from homeassistant.core import HomeAssistant

from .const import DOMAIN, LOGGER
from .core.clips import ClipIndex
from .core.media import MediaPathError, clip_file, stream_range

PLAYBACK_SPAN: Final = 3600.0
"""How far one playback runs: an hour (a player asks again from where it ended)."""
MAX_PLAYBACKS: Final = 8
"""Joins running at once (each holds a thread and a few fragments); more get 503."""
QUEUED_PIECES: Final = 32
"""Muxer pieces waiting for a slow viewer before the join waits too (a fragment is a few)."""
_POLL_S: Final = 1.0


def play_url(entry_id: str, camera: str, moment: float) -> str:
    """The media view's path of playback from a moment (milliseconds since 1970 in the name)."""
    return f"/api/{DOMAIN}/media/{entry_id}/play/{camera}/{round(moment * 1000)}.mp4"


def moment_in_name(name: str, suffix: str) -> float | None:
    """The moment a `play_url` or `frame_url` names (`<ms><suffix>`), or None."""
    digits = name.removesuffix(suffix)
    if name.endswith(suffix) and digits.isdigit() and len(digits) <= 15:
        return int(digits) / 1000
    return None


def playback_sources(
    storage: Path, index: ClipIndex, camera: str, moment: float
) -> list[tuple[Path, float]]:
    """The clips to join from a moment on, as (path, start). Blocking."""
    sources = []
    for clip in index.covering(camera, moment, moment + PLAYBACK_SPAN):
        with contextlib.suppress(MediaPathError):  # retention may have just deleted it
            sources.append((clip_file(storage, clip), clip.start))
    return sources


class _ViewerGone(Exception):
    """The viewer stopped reading: the join ends."""


class Playbacks:
    """Streams joins to viewers, at most MAX_PLAYBACKS at once."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Joins hand their pieces to this loop."""
        self.hass = hass
        self.running = 0

    async def serve(
        self, request: web.Request, sources: list[tuple[Path, float]], moment: float
    ) -> web.StreamResponse:
        """The fragmented MP4 of the footage from `moment`, written as it is joined."""
        if self.running >= MAX_PLAYBACKS:
            raise web.HTTPServiceUnavailable(reason="Too many playbacks")
        loop = self.hass.loop
        pieces: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUED_PIECES)
        gone = threading.Event()

        def put(piece: bytes | None) -> None:
            future = asyncio.run_coroutine_threadsafe(pieces.put(piece), loop)
            while True:
                try:
                    future.result(_POLL_S)
                except concurrent.futures.TimeoutError:
                    if gone.is_set():
                        future.cancel()
                        raise _ViewerGone from None
                else:
                    return

        def join() -> None:
            try:
                stream_range(sources, moment, moment + PLAYBACK_SPAN, put)
            except _ViewerGone:
                return
            except (av.error.FFmpegError, OSError, MediaPathError) as err:
                LOGGER.warning("Playback from %.0f stopped: %s", moment, err)
            with contextlib.suppress(_ViewerGone):
                put(None)

        response = web.StreamResponse(
            headers={"Content-Type": "video/mp4", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        self.running += 1
        thread = threading.Thread(target=join, name=f"{DOMAIN} playback", daemon=True)
        thread.start()
        try:
            while (piece := await pieces.get()) is not None:
                await response.write(piece)
            await response.write_eof()
        except ConnectionError:
            pass  # the viewer closed the video
        finally:
            gone.set()
            self.running -= 1
        return response
