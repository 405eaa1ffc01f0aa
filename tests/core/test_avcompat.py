"""Stream copy keeps no decoder state: what PyAV allocates for decoding is really freed."""

from __future__ import annotations

import ctypes
from pathlib import Path

import av
import numpy as np

from custom_components.pm_dvr.core.avcompat import (
    add_template_stream,
    release_decoder,
    write_header,
)

from .test_stream import write_video


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_libc = ctypes.CDLL(None)
_libc.mallinfo2.restype = _MallInfo2


def malloc_in_use() -> int:
    """Bytes the C heap has handed out, in every arena and in mmapped chunks (glibc)."""
    info = _libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def decoded_frames(path: Path) -> tuple[int, list[str]]:
    with av.open(str(path)) as inp:
        codecs = [s.codec_context.name for s in inp.streams]
        return sum(1 for _ in inp.decode(inp.streams.video[0])), codecs


def test_released_input_decoder_frees_its_memory_and_copies_still(tmp_path: Path) -> None:
    source = write_video(tmp_path / "cam.mp4", frames=10)
    with av.open(str(source)) as inp:
        video = inp.streams.video[0]
        context = video.codec_context
        kept = (context.name, context.width, context.height, context.extradata)
        before = malloc_in_use()
        release_decoder(context)
        freed = before - malloc_in_use()
        if hasattr(context, "close"):  # PyAV 13; newer PyAV cannot free it
            assert freed > 500_000  # an H.264 decoder context is about 0.9 MB
        assert not context.is_open
        assert (context.name, context.width, context.height, context.extradata) == kept
        with av.open(str(tmp_path / "copy.mp4"), "w", format="mp4") as out:
            copy = add_template_stream(out, video)
            write_header(out)
            for packet in inp.demux(video):
                if packet.dts is not None:
                    packet.stream = copy
                    out.mux_one(packet)
    assert decoded_frames(tmp_path / "copy.mp4") == (10, ["h264"])


def test_a_decoder_in_use_is_left_alone() -> None:
    decoder = av.CodecContext.create("h264", "r")
    decoder.open()
    release_decoder(decoder)
    assert decoder.is_open


def test_clip_header_closes_the_copied_decoder_and_keeps_the_encoder(tmp_path: Path) -> None:
    source = write_video(tmp_path / "cam.mp4", frames=10)
    with av.open(str(source)) as inp, av.open(str(tmp_path / "clip.mp4"), "w", "mp4") as out:
        video = inp.streams.video[0]
        copy = add_template_stream(out, video)
        assert not copy.codec_context.is_encoder  # never an H.264 encoder (libx264) for a copy
        encoder = out.add_stream("aac", rate=8000, layout="mono")
        write_header(out, keep=encoder)
        if hasattr(copy.codec_context, "close"):
            assert not copy.codec_context.is_open
        assert encoder.codec_context.is_open
        for packet in inp.demux(video):
            if packet.dts is not None:
                packet.stream = copy
                out.mux_one(packet)
        for n in range(4):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 8000, n * 1024
            out.mux(encoder.encode(frame))
        out.mux(encoder.encode(None))
    assert decoded_frames(tmp_path / "clip.mp4") == (10, ["h264", "aac"])
