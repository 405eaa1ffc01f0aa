"""A minimal MPEG-TS muxer for live viewers: H.264/H.265 video and AAC/MP3 audio, stream copy.

Why not FFmpeg's muxer through PyAV: PyAV only offers interleaved writing, which holds every
video packet until a later packet arrives (up to a frame, 40 ms at 25 fps) and each audio packet
until the next video one. Live viewers want each packet the moment it arrives, and MPEG-TS is
simple enough to write directly: a PAT and PMT before every keyframe (so a viewer can join
there), PES packets cut into 188-byte TS packets, and a PCR on every video PES.
MPEG-TS is the one container both HA's stream worker and go2rtc read unchanged over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
import struct

TS_PACKET = 188
TS_PAYLOAD = 184
TS_CLOCK = 90_000
PTS_MASK = (1 << 33) - 1
# PCR runs this far behind the DTS, as FFmpeg's muxer does: players decode ahead of the clock.
PCR_DELAY = 63_000
PMT_PID = 0x1000
VIDEO_PID = 0x100
AUDIO_PID = 0x101
STREAM_TYPES = {"h264": 0x1B, "hevc": 0x24, "aac": 0x0F, "mp3": 0x03}
AUD = {"h264": b"\x00\x00\x00\x01\x09\xf0", "hevc": b"\x00\x00\x00\x01\x46\x01\x50"}
START_CODE = b"\x00\x00\x00\x01"


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 of a PSI section (computed once per muxer, so a plain loop is enough)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _section(table_id: int, extension: int, body: bytes) -> bytes:
    """A long-form PSI section with its CRC."""
    length = 5 + len(body) + 4
    head = struct.pack(">BHHBBB", table_id, 0xB000 | length, extension, 0xC1, 0, 0)
    section = head + body
    return section + struct.pack(">I", crc32_mpeg2(section))


def _timestamp(prefix: int, value: int) -> bytes:
    value &= PTS_MASK
    return bytes(
        (
            (prefix << 4) | (((value >> 30) & 0x07) << 1) | 1,
            (value >> 22) & 0xFF,
            (((value >> 15) & 0x7F) << 1) | 1,
            (value >> 7) & 0xFF,
            ((value & 0x7F) << 1) | 1,
        )
    )


def _pcr(value: int) -> bytes:
    base = value & PTS_MASK
    return bytes(
        (
            (base >> 25) & 0xFF,
            (base >> 17) & 0xFF,
            (base >> 9) & 0xFF,
            (base >> 1) & 0xFF,
            ((base & 1) << 7) | 0x7E,
            0,
        )
    )


def adts_header(config: bytes, payload_size: int) -> bytes | None:
    """The 7-byte ADTS header for one raw AAC frame, from its AudioSpecificConfig."""
    if len(config) < 2:
        return None
    profile = config[0] >> 3
    rate_index = ((config[0] & 0x07) << 1) | (config[1] >> 7)
    channels = (config[1] >> 3) & 0x0F
    if not 1 <= profile <= 4 or rate_index > 12:
        return None
    size = payload_size + 7
    return bytes(
        (
            0xFF,
            0xF1,
            ((profile - 1) << 6) | (rate_index << 2) | (channels >> 2),
            ((channels & 0x03) << 6) | ((size >> 11) & 0x03),
            (size >> 3) & 0xFF,
            ((size & 0x07) << 5) | 0x1F,
            0xFC,
        )
    )


def annex_b(data: bytes) -> bytes:
    """Length-prefixed NAL units (MP4's AVCC/HVCC, 4-byte lengths) as Annex B."""
    out = bytearray()
    pos = 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        out += START_CODE
        out += data[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return bytes(out)


def avcc_parameter_sets(extradata: bytes) -> bytes:
    """The SPS and PPS of an MP4 `avcC` record, as Annex B (empty when it is not one)."""
    if len(extradata) < 7 or extradata[0] != 1:
        return b""
    out = bytearray()
    pos = 5
    try:
        for count_mask in (0x1F, 0xFF):
            count = extradata[pos] & count_mask
            pos += 1
            for _ in range(count):
                size = int.from_bytes(extradata[pos : pos + 2], "big")
                out += START_CODE + extradata[pos + 2 : pos + 2 + size]
                pos += 2 + size
    except IndexError:
        return b""
    return bytes(out)


@dataclass(frozen=True, slots=True)
class TsTracks:
    """What a TS stream carries; two streams with equal tracks can continue one another."""

    video_codec: str
    parameter_sets: bytes
    audio_codec: str | None = None


class TsMuxer:
    """Turns timed video and audio frames into MPEG-TS bytes, one chunk per frame."""

    def __init__(self, tracks: TsTracks) -> None:
        if tracks.video_codec not in ("h264", "hevc"):
            raise ValueError(f"no MPEG-TS live view for {tracks.video_codec}")
        self.tracks = tracks
        self._aud = AUD[tracks.video_codec]
        self._hevc = tracks.video_codec == "hevc"
        self._cc: dict[int, int] = {}
        streams = [(STREAM_TYPES[tracks.video_codec], VIDEO_PID)]
        if tracks.audio_codec is not None:
            streams.append((STREAM_TYPES[tracks.audio_codec], AUDIO_PID))
        pmt_body = struct.pack(">HH", 0xE000 | VIDEO_PID, 0xF000) + b"".join(
            struct.pack(">BHH", kind, 0xE000 | pid, 0xF000) for kind, pid in streams
        )
        pat = _section(0x00, 1, struct.pack(">HH", 1, 0xE000 | PMT_PID))
        pmt = _section(0x02, 1, pmt_body)
        # Payload-only headers of continuation packets, per PID and continuity counter.
        self._middle = {
            pid: [struct.pack(">BHB", 0x47, pid, 0x10 | cc) for cc in range(16)]
            for pid in (VIDEO_PID, AUDIO_PID)
        }
        self._psi = [(0, pat), (PMT_PID, pmt)]

    def _next_cc(self, pid: int) -> int:
        cc = self._cc.get(pid, -1) + 1 & 0x0F
        self._cc[pid] = cc
        return cc

    def tables(self) -> bytes:
        """The PAT and PMT, each in one TS packet: what a joining viewer needs first."""
        out = bytearray()
        for pid, section in self._psi:
            head = struct.pack(">BHB", 0x47, 0x4000 | pid, 0x10 | self._next_cc(pid))
            packet = head + b"\x00" + section
            out += packet + b"\xff" * (TS_PACKET - len(packet))
        return bytes(out)

    def video(self, data: bytes, pts: int, dts: int, keyframe: bool) -> bytes:
        """One access unit (Annex B) as TS bytes; a keyframe comes with the tables first."""
        head = self._aud
        if keyframe and not self._has_parameter_sets(data):
            head += self.tracks.parameter_sets
        if pts == dts:
            timing = b"\x80\x05" + _timestamp(0x2, pts)
        else:
            timing = b"\xc0\x0a" + _timestamp(0x3, pts) + _timestamp(0x1, dts)
        pes = b"\x00\x00\x01\xe0\x00\x00\x84" + timing + head + data
        flags = 0x50 if keyframe else 0x10  # random access on keyframes; PCR always
        first_field = bytes((flags,)) + _pcr(dts - PCR_DELAY)
        packets = self._packetize(VIDEO_PID, pes, first_field)
        return self.tables() + packets if keyframe else packets

    def audio(self, frame: bytes, pts: int) -> bytes:
        """One audio frame (ADTS AAC or MP3) as one PES."""
        timing = b"\x80\x05" + _timestamp(0x2, pts)
        length = 3 + 5 + len(frame)
        pes = b"\x00\x00\x01\xc0" + struct.pack(">H", min(length, 0xFFFF)) + b"\x84" + timing
        return self._packetize(AUDIO_PID, pes + frame, None)

    def _has_parameter_sets(self, data: bytes) -> bool:
        head = data[:64]
        for offset in range(len(head) - 3):
            if head[offset : offset + 3] == b"\x00\x00\x01":
                header = head[offset + 3]
                kind = (header >> 1) & 0x3F if self._hevc else header & 0x1F
                if kind in ((32, 33) if self._hevc else (7,)):
                    return True
        return False

    def _packetize(self, pid: int, pes: bytes, first_field: bytes | None) -> bytes:
        """Cut one PES into TS packets; stuffing goes into the adaptation field of the last."""
        out: list[bytes] = []
        size = len(pes)
        pos = 0
        field = first_field
        pusi = 0x4000
        while True:
            room = TS_PAYLOAD if field is None else TS_PAYLOAD - 1 - len(field)
            left = size - pos
            if left >= room and field is None and not pusi:
                # Continuation packets without an adaptation field: the bulk of a frame.
                middle = self._middle[pid]
                full = left // TS_PAYLOAD
                if left % TS_PAYLOAD == 0:
                    full -= 1  # keep the last packet for the loop's end
                cc = self._cc.get(pid, -1)
                for _ in range(full):
                    cc = cc + 1 & 0x0F
                    out.append(middle[cc] + pes[pos : pos + TS_PAYLOAD])
                    pos += TS_PAYLOAD
                self._cc[pid] = cc
                left = size - pos
            if left > room:
                take = room
                adaptation = b"" if field is None else bytes((len(field),)) + field
            else:
                take = left
                stuffing = room - left
                if field is None:
                    if stuffing == 0:
                        adaptation = b""
                    elif stuffing == 1:
                        adaptation = b"\x00"
                    else:
                        adaptation = bytes((stuffing - 1, 0)) + b"\xff" * (stuffing - 2)
                else:
                    body = field + b"\xff" * stuffing
                    adaptation = bytes((len(body),)) + body
            control = 0x30 if adaptation else 0x10
            head = struct.pack(">BHB", 0x47, pusi | pid, control | self._next_cc(pid))
            out.append(head + adaptation + pes[pos : pos + take])
            pos += take
            field = None
            pusi = 0
            if pos >= size:
                return b"".join(out)
