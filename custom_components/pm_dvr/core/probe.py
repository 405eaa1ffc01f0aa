"""Opening camera streams with PyAV: bounded timeouts, TCP transport, and a stream test."""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Any

import av
import av.container
import av.error

from .errors import (
    CannotConnectError,
    InvalidAuthError,
    InvalidUrlError,
    StreamError,
    StreamNotFoundError,
    TimedOutError,
    UnsupportedCodecError,
)
from .urls import is_network_url, is_valid_stream_url, mask_url

SUPPORTED_VIDEO_CODECS = frozenset({"h264", "hevc"})
OPEN_TIMEOUT = 10.0
READ_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a stream reports about itself, stored for display and diagnostics."""

    video_codec: str
    width: int
    height: int
    fps: float | None
    audio_codec: str | None

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON form for config entries and diagnostics."""
        return {
            "video_codec": self.video_codec,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "audio_codec": self.audio_codec,
        }


def is_rtsp_url(url: str) -> bool:
    """Whether a URL is RTSP (over TCP, with FFmpeg's own socket timeout)."""
    return url.lower().startswith(("rtsp://", "rtsps://"))


def open_options(url: str, read_timeout: float | None = None) -> dict[str, str]:
    """FFmpeg options: TCP for RTSP (UDP loses packets), short probing for a fast start.

    For RTSP the read timeout is FFmpeg's socket timeout, checked in C. PyAV's own read timeout
    is an interrupt callback that takes the GIL and calls Python on every socket read (several
    per RTP packet): about a third of the recorder's CPU at one camera.
    """
    options = {"analyzeduration": "500000", "probesize": "500000"}
    if is_rtsp_url(url):
        options["rtsp_transport"] = "tcp"
        options["rtsp_flags"] = "prefer_tcp"
        if read_timeout is not None:
            options["timeout"] = str(max(1, round(read_timeout * 1_000_000)))
    return options


def open_stream(
    url: str, open_timeout: float = OPEN_TIMEOUT, read_timeout: float = READ_TIMEOUT
) -> av.container.InputContainer:
    """Open a stream, translating FFmpeg errors into core errors. Blocking: call off the loop.

    What FFmpeg 7 and 9 raise (tried on closed, silent and unanswered local ports and the real
    RTSP server): a closed port ConnectionRefusedError; an address that never answers the
    connection TimeoutError or OSError (no route to host); 401 and 404 their HTTP errors; and
    InvalidDataError for an RTSP server that accepted the connection but gave no OK answer.
    """
    if not is_valid_stream_url(url):
        raise InvalidUrlError(f"Not a supported stream URL: {mask_url(url)}")
    started = time.monotonic()
    try:
        return av.open(
            url,
            options=open_options(url, read_timeout),
            timeout=(open_timeout, None if is_rtsp_url(url) else read_timeout),
        )
    except (av.error.FFmpegError, OSError) as err:
        _mask_error(err, url)
        raise _open_error(err, url, time.monotonic() - started, open_timeout, read_timeout) from err


def _mask_error(err: BaseException, url: str) -> None:
    """Take the URL out of FFmpeg's own error: it stays chained to ours, and a traceback logged
    with it would show the password (PyAV puts the URL in the error as its filename)."""
    masked = mask_url(url)
    if masked == url:
        return
    err.args = tuple(arg.replace(url, masked) if isinstance(arg, str) else arg for arg in err.args)
    # A plain OSError keeps its filename apart from its args (PyAV's is read from them).
    if isinstance(err, OSError) and isinstance(err.filename, str) and url in err.filename:
        err.filename = err.filename.replace(url, masked)


def _open_error(
    err: BaseException, url: str, waited: float, open_timeout: float, read_timeout: float
) -> StreamError:
    """The core error for what FFmpeg raised while opening a stream."""
    if isinstance(err, av.error.HTTPUnauthorizedError):
        return InvalidAuthError(f"Authentication failed for {mask_url(url)}")
    if isinstance(err, av.error.HTTPNotFoundError | av.error.FileNotFoundError):
        return StreamNotFoundError(f"Stream not found at {mask_url(url)}")
    if isinstance(err, av.error.InvalidDataError):
        if not is_rtsp_url(url):  # a file or HTTP body that is no video FFmpeg can read
            return UnsupportedCodecError(f"Unreadable stream at {mask_url(url)}")
        # FFmpeg's RTSP client drops the error of reading an answer and reports only that no OK
        # came. Having waited out a timeout tells a server that never answered from one that
        # closed the connection (or spoke something other than RTSP).
        if waited >= min(open_timeout, read_timeout):
            return TimedOutError(
                f"{mask_url(url)} accepted the connection but did not answer within {waited:.0f} s"
            )
        return CannotConnectError(f"{mask_url(url)} closed the connection without an RTSP answer")
    return CannotConnectError(f"Cannot connect to {mask_url(url)}: {type(err).__name__}")


def video_info(container: av.container.InputContainer) -> StreamInfo:
    """Describe the first video and audio streams, or raise if the video cannot be copied."""
    if not container.streams.video:
        raise UnsupportedCodecError("The stream has no video")
    video = container.streams.video[0]
    codec = video.codec_context.name
    if codec not in SUPPORTED_VIDEO_CODECS:
        raise UnsupportedCodecError(f"Video codec {codec} is not H.264 or H.265")
    rate = video.average_rate or video.guessed_rate
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    return StreamInfo(
        video_codec=codec,
        width=video.codec_context.width,
        height=video.codec_context.height,
        fps=round(float(rate), 2) if rate else None,
        audio_codec=audio,
    )


def probe_stream(url: str, timeout: float = OPEN_TIMEOUT) -> StreamInfo:
    """Open a stream and read up to its first keyframe, as the camera flow's test. Blocking."""
    container = open_stream(url, open_timeout=timeout, read_timeout=min(timeout, READ_TIMEOUT))
    try:
        info = video_info(container)
        video = container.streams.video[0]
        deadline = time.monotonic() + timeout
        # Defensive: FFmpeg's parsers flag IDR frames themselves, so a stream that ends or stalls
        # before its first keyframe is the only way here; not reproducible with the test server.
        try:
            for packet in container.demux(video):
                if packet.is_keyframe and packet.size:
                    return info
                if packet.size == 0 or time.monotonic() > deadline:  # pragma: no cover
                    break
        except av.error.FFmpegError as err:  # pragma: no cover
            _mask_error(err, url)
            raise CannotConnectError(
                f"Stream {mask_url(url)} stopped: {type(err).__name__}"
            ) from err
        raise TimedOutError(  # pragma: no cover
            f"No keyframe from {mask_url(url)} within {timeout:.0f} s"
        )
    finally:
        container.close()


__all__ = ["StreamInfo", "is_network_url", "open_stream", "probe_stream", "video_info"]
