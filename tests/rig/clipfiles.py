"""Small real clips for media tests: H.264 (and AAC) in fragmented MP4, like the recorder's."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def make_clip(path: Path, seconds: float = 1.0, audio: bool = False) -> None:
    """A real H.264 clip (fragmented MP4 like the recorder's), 160x90 at 10 fps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(
        str(path), "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}
    ) as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 160, 90, "yuv420p"
        video.options = {"g": "10", "bf": "0", "sc_threshold": "0"}  # a keyframe every second
        sound = out.add_stream("aac", rate=8000, layout="mono") if audio else None
        frames = round(seconds * 10)
        for i in range(frames):
            image = av.VideoFrame(160, 90, "yuv420p")
            for plane in image.planes:
                plane.update(bytes([(i * 20) % 256]) * plane.buffer_size)
            image.pts = i
            out.mux(video.encode(image))
        out.mux(video.encode(None))
        if sound is not None:
            for first in range(0, round(8000 * seconds), 1024):
                samples = np.zeros((1, 1024), dtype=np.float32)
                block = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                block.sample_rate = 8000
                block.pts = first
                out.mux(sound.encode(block))
            out.mux(sound.encode(None))


def decode_cut_clip(path: Path) -> list[av.VideoFrame]:
    """Video frames of a clip whose camera died mid-frame.

    The last packet may hold the few bytes of a frame the camera never finished sending (seen
    as 6 bytes), which FFmpeg 8's decoder refuses where older ones skipped it. Every other
    packet must decode.
    """
    with av.open(str(path)) as container:
        packets = [packet for packet in container.demux(video=0) if packet.size]
        frames: list[av.VideoFrame] = []
        for number, packet in enumerate(packets, 1):
            try:
                frames.extend(packet.decode())  # type: ignore[arg-type]
            except av.error.InvalidDataError:
                if number < len(packets) or packet.size > 64:
                    raise
        frames.extend(container.streams.video[0].codec_context.decode(None))  # type: ignore[arg-type]
        return frames
