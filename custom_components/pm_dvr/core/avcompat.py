"""Stream copy with PyAV 13 (HA 2025.4's pin) and newer PyAV, with no decoder state kept.

PyAV gives every stream a codec context, although stream copy decodes nothing: an H.264 decoder
context is about 0.9 MB, so each camera carried two of them (its input's, and its clip's, opened
for every clip) for no use. PyAV 13 frees a context only when it closes it; newer PyAV can make a
clip's stream from the template's decoder instead of an encoder (libx264, 3.5 MB when opened).
"""

from __future__ import annotations

from typing import Any, cast

import av
from av.codec.context import CodecContext
import av.container
import av.error
import av.stream

PYAV_VERSION = tuple(int(part) for part in av.__version__.split(".")[:2] if part.isdigit())
# PyAV >= 14.2 makes a video stream from a template as an encoder unless told it is opaque.
_TEMPLATE_OPTIONS: dict[str, Any] = {"opaque": True} if PYAV_VERSION >= (14, 2) else {}


def add_template_stream(
    out: av.container.OutputContainer, stream: av.stream.Stream
) -> av.stream.Stream:
    """A new output stream with a copy of `stream`'s parameters, for stream copy.

    Its codec context is single-threaded: PyAV opens it when the header is written, although
    nothing is ever decoded, and a pool of slice threads would come with it.
    """
    if hasattr(out, "add_stream_from_template"):  # pragma: no cover - PyAV >= 14
        copy = cast(av.stream.Stream, out.add_stream_from_template(stream, **_TEMPLATE_OPTIONS))
    else:
        copy = out.add_stream(template=stream)
    copy.codec_context.thread_count = 1
    return copy


def write_header(out: av.container.OutputContainer, keep: av.stream.Stream | None = None) -> None:
    """Write a clip's header, then close the codecs PyAV opened for its copied streams.

    From the header on, stream copy needs only the streams' parameters, which the header holds.
    `keep` is the audio encoder of a transcoded track, which still has work to do.
    """
    out.start_encoding()
    for stream in out.streams:
        if stream is not keep:
            _close(stream.codec_context)


def release_decoder(context: CodecContext) -> None:
    """Free the decoder state of an input stream that nothing decodes with (PyAV 13).

    PyAV 13 frees it only when closing an open context; codec, size and extradata stay readable.
    Newer PyAV has no close, and keeps it.
    """
    if context.is_open or not hasattr(context, "close"):
        return
    context.thread_count = 1
    try:
        context.open()
    except av.error.FFmpegError:  # pragma: no cover - FFmpeg opened this codec to probe it
        return
    context.close()


def _close(context: CodecContext | None) -> None:
    if context is not None and context.is_open and hasattr(context, "close"):
        context.close()
