"""DTS/PTS repair for broken cameras: the slow path behind the recorder's per-packet check.

The recorder checks every packet inline (`last < dts <= last + max_gap`); only packets that fail
that test come here, so this module may be thorough without costing the common case anything.
Muxers reject missing or non-increasing DTS, and a big jump inside one MP4 would make a clip
hours long, so each packet is kept as is, repaired in place, dropped, or flagged as a jump (the
recorder then starts a new clip).
"""

from __future__ import annotations

import enum
from fractions import Fraction

import av

MAX_GAP_SECONDS = 10.0
MAX_BACKSTEP_SECONDS = 0.5


def dts_of(packet: av.Packet) -> int | None:
    """A packet's DTS, which may be None (PyAV 13's stubs say it never is)."""
    value: object = packet.dts
    return value if isinstance(value, int) else None


def known(value: int | None) -> int:
    """A timestamp that repair has already filled in."""
    assert value is not None
    return value


class Verdict(enum.IntEnum):
    """What to do with a packet after repair."""

    OK = 0
    REPAIRED = 1
    DROP = 2
    JUMP = 3


class TimestampRepair:
    """Repair rules of one stream; thresholds are kept in that stream's time base ticks.

    `bump` streams (video) move a slightly late DTS to last+1, because dropping a video packet
    breaks every frame that refers to it; audio (`bump=False`) drops it instead.
    """

    __slots__ = ("bump", "max_backstep", "max_gap", "step")

    def __init__(
        self,
        time_base: Fraction,
        frame_seconds: float,
        bump: bool = True,
        max_gap_seconds: float = MAX_GAP_SECONDS,
        max_backstep_seconds: float = MAX_BACKSTEP_SECONDS,
    ) -> None:
        ticks = 1 / time_base
        self.step = max(1, round(frame_seconds * ticks))
        self.max_gap = max(self.step, int(max_gap_seconds * ticks))
        self.max_backstep = int(max_backstep_seconds * ticks)
        self.bump = bump

    def repair(self, packet: av.Packet, last: int) -> Verdict:
        """Judge `packet` against the stream's last DTS, fixing its timestamps in place."""
        dts = dts_of(packet)
        pts = packet.pts
        if dts is None:
            if pts is not None and last < pts <= last + self.max_gap:
                packet.dts = pts
                return Verdict.REPAIRED
            if not self.bump:
                return Verdict.DROP
            dts = last + self.step
            packet.dts = dts
            if pts is None or pts < dts:
                packet.pts = dts
            return Verdict.REPAIRED
        if dts > last + self.max_gap or dts < last - self.max_backstep:
            return Verdict.JUMP
        if dts > last:
            return Verdict.OK
        if not self.bump:
            return Verdict.DROP
        dts = last + 1
        packet.dts = dts
        if pts is None or pts < dts:
            packet.pts = dts
        return Verdict.REPAIRED

    def first(self, packet: av.Packet, following: av.Packet | None) -> None:
        """Give the first packet of a connection timestamps (RTSP sends the first one without).

        Taken from the following packet of the stream minus one frame, as HA's worker does, or 0.
        """
        dts = dts_of(packet)
        if dts is not None:
            if packet.pts is None:
                packet.pts = dts
            return
        if packet.pts is not None:
            packet.dts = packet.pts
            return
        start = 0
        if following is not None:
            ref = dts_of(following)
            if ref is None:
                ref = following.pts
            if ref is not None:
                start = ref - (following.duration or self.step)
        packet.dts = start
        packet.pts = start


def parameter_sets(codec: str, data: bytes) -> bytes | None:
    """The in-band SPS/PPS (H.264) or VPS/SPS/PPS (H.265) at the head of an Annex-B keyframe.

    Compared from keyframe to keyframe to notice a resolution or codec-parameter change; None
    when the packet does not start with parameter sets (length-prefixed or sent out of band).
    """
    if not (data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")):
        return None
    hevc = codec == "hevc"
    pos = 0
    end = -1
    found = False
    while True:
        start = data.find(b"\x00\x00\x01", pos)
        if start < 0 or start + 3 >= len(data):
            break
        header = data[start + 3]
        kind = (header >> 1) & 0x3F if hevc else header & 0x1F
        is_param = kind in (32, 33, 34) if hevc else kind in (7, 8)
        if not is_param and found:
            end = start
            break
        found = found or is_param
        pos = start + 3
    if not found:
        return None
    return data[:end] if end > 0 else data
