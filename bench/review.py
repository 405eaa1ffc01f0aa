"""Benchmark of review: the card's timeline, playback from a moment and export of an hour, against
today's media-browser path (list the hour, then open its clips one by one).

Run from the repo root: .venv/bin/python bench/review.py [--days 30] [--events 2000]
One camera with `--days` of 10-s clips in the index (259,200 for 30 days: synthetic entries, no
files), of which one hour is real footage on disk (360 clips, 640x360 at 15 fps, a keyframe every
2 s) under bench/out/review (gitignored), plus events and a motion log over the whole range.
pm_dvr's side is the work of `pm_dvr/timeline`, `pm_dvr/playback` and `pm_dvr.export`; the anchor
is what the media browser offers for the same question. A fault round then deletes and truncates
clips of the hour behind the index's back (a disk error, or retention racing a viewer) and
measures playback and export again.

Targets: timeline 30 d <= 100 ms, 1 d <= 20 ms; playback request -> first decodable frame
<= 0.5 s; export of the hour <= 5 s, and the file plays. Last line: RESULT {json}.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import contextlib
import io
import json
import os
from pathlib import Path
import random
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

import av

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.pm_dvr.core.clips import Clip, ClipIndex  # noqa: E402
from custom_components.pm_dvr.core.event import EVENT_FILE  # noqa: E402
from custom_components.pm_dvr.core.layout import clip_path, events_dir  # noqa: E402
from custom_components.pm_dvr.core.media import (  # noqa: E402
    EventCatalog,
    day_buckets,
    export_range,
    hour_buckets,
    hour_range,
    playback_start,
    stream_range,
)
from custom_components.pm_dvr.core.motion_log import MotionLog  # noqa: E402
from custom_components.pm_dvr.core.writer import complete_end  # noqa: E402
from custom_components.pm_dvr.playback import playback_sources  # noqa: E402
from custom_components.pm_dvr.websocket_api import _events_between  # noqa: E402

CAMERA = "gate"
CLIP_S = 10
FPS = 15
TARGETS = {
    "timeline_30d_ms": 100.0,
    "timeline_1d_ms": 20.0,
    "playback_first_frame_s": 0.5,
    "export_1h_s": 5.0,
}


def make_clip(path: Path) -> None:
    """A 10-s H.264 clip, fragmented as the recorder writes them, with moving content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(
        str(path), "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}
    ) as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"g": str(2 * FPS), "bf": "0", "sc_threshold": "0", "preset": "veryfast"}
        rng = random.Random(1)
        for i in range(CLIP_S * FPS):
            image = av.VideoFrame(640, 360, "yuv420p")
            for plane, size in zip(image.planes, (640 * 360, 320 * 180, 320 * 180), strict=True):
                plane.update(bytes(rng.randrange(96, 160) for _ in range(64)) * (size // 64))
            image.pts = i
            for packet in stream.encode(image):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def build(storage: Path, days: int, events: int) -> tuple[ClipIndex, float, float]:
    """The index, and the real hour (t0, t1): the hour before the last one of the range."""
    shutil.rmtree(storage, ignore_errors=True)
    end = float(int(time.time()) // 3600 * 3600)
    start = end - days * 86400
    hour = (end - 2 * 3600, end - 3600)
    template = storage / "template.mp4"
    make_clip(template)
    index = ClipIndex(storage / "recordings")
    t = start
    while t < end:
        if t == hour[0]:
            while t < hour[1]:  # the real hour: files on disk
                path = clip_path(storage, CAMERA, t)
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(template, path)
                os.utime(path, (t + CLIP_S, t + CLIP_S))
                index.add(Clip(t, t + CLIP_S, CAMERA, path, path.stat().st_size))
                t += CLIP_S
            continue
        # a reconnect gap every few hours, as the timeline must show them
        if int(t) % (5 * 3600) < CLIP_S:
            t += 60
            continue
        index.add(Clip(t, t + CLIP_S, CAMERA, clip_path(storage, CAMERA, t), 900_000))
        t += CLIP_S
    root = events_dir(storage)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2)
    for i in range(events):
        at = start + (i + rng.random()) * (end - start) / events
        event_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(at)) + f"-{i % 1000:03d}_motion"
        (root / event_id).mkdir()
        doc = {
            "id": event_id,
            "label": f"motion {i}",
            "trigger": "motion",
            "cameras": [CAMERA],
            "requested": {
                "start": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(at)),
                "end": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(at + 30)),
            },
            "clips": {CAMERA: []},
            "state": "complete",
        }
        (root / event_id / EVENT_FILE).write_text(json.dumps(doc))
    log = MotionLog(storage, CAMERA)
    at = start
    while at < end:  # about 100 motion intervals a day
        log.append(at, at + rng.uniform(3, 40))
        at += rng.uniform(300, 1400)
    return index, hour[0], hour[1]


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def timeline(index: ClipIndex, catalog: EventCatalog, log: MotionLog, t0: float, t1: float) -> str:
    """What `pm_dvr/timeline` does for a range, down to the JSON it sends."""
    spans = index.coverage(CAMERA, t0, t1)
    events = _events_between(catalog, CAMERA, t0, t1)
    motion = log.between(t0, t1)
    return json.dumps(
        {
            "recordings": [list(s) for s in spans],
            "motion": [list(m) for m in motion],
            "events": [[e.event_id, e.label, e.start, e.end] for e in events],
        }
    )


def anchor_listing(index: ClipIndex, days: int) -> None:
    """The media browser for the same range: the camera's days, then each day's hours."""
    starts = index.starts(CAMERA)
    for day in day_buckets(starts)[-days:]:
        hour_buckets(starts, day.first, day.first + day.count)


class _FirstFrame(Exception):
    """The stream holds a whole fragment: stop the join."""


def first_frame_s(storage: Path, index: ClipIndex, moment: float) -> float:
    """Request -> first decodable frame of playback from a moment (pm_dvr/playback's lookup,
    then the join until its first fragment, decoded)."""
    t0 = time.perf_counter()
    sources = playback_sources(storage, index, CAMERA, moment)
    if playback_start(sources, moment) is None:
        raise AssertionError("no footage")
    pieces: list[bytes] = []
    head = storage / "head.mp4"

    def write(piece: bytes) -> None:
        pieces.append(piece)
        if len(pieces) > 2:
            head.write_bytes(b"".join(pieces))
            if complete_end(head)[1]:
                raise _FirstFrame

    with contextlib.suppress(_FirstFrame):
        stream_range(sources, moment, moment + 3600, write)
    with av.open(io.BytesIO(b"".join(pieces))) as inp:
        next(inp.decode(video=0))
    return time.perf_counter() - t0


def anchor_first_frame_s(storage: Path, index: ClipIndex, moment: float) -> float:
    """The media browser: list the hour, open the clip of the moment, its first frame (from the
    clip's start: a clip cannot start at a moment)."""
    t0 = time.perf_counter()
    starts = index.starts(CAMERA)
    day = time.strftime("%Y-%m-%d", time.localtime(moment))
    lo, hi = hour_range(starts, day, time.strftime("%H", time.localtime(moment)))
    clips = index.starting(CAMERA, starts[lo], starts[hi - 1] + 1)
    clip = next(c for c in reversed(clips) if c.start <= moment)
    with av.open(str(clip.path)) as inp:
        next(inp.decode(video=0))
    return time.perf_counter() - t0


def anchor_hour_s(index: ClipIndex, t0: float, t1: float) -> float:
    """The media browser's way through an hour: each clip opened and started in turn."""
    started = time.perf_counter()
    for clip in index.covering(CAMERA, t0, t1):
        if clip.path.exists():
            with av.open(str(clip.path)) as inp:
                next(inp.decode(video=0))
    return time.perf_counter() - started


def export_s(storage: Path, index: ClipIndex, t0: float, t1: float) -> tuple[float, float, Path]:
    """Seconds to export [t0, t1], and how long the file plays (by its frames)."""
    started = time.perf_counter()
    done = export_range(storage, CAMERA, index.covering(CAMERA, t0, t1), t0, t1, reserve=0)
    took = time.perf_counter() - started
    with av.open(str(done.path)) as inp:
        frames = sum(1 for _ in inp.decode(video=0))
    return took, frames / FPS, done.path


def busy() -> subprocess.Popen[bytes]:
    """A second core's worth of other work (HA's own, the recorder's), in its own process."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--moments", type=int, default=15)
    args = parser.parse_args()
    storage = ROOT / "bench" / "out" / "review"
    started = time.perf_counter()
    index, hour0, hour1 = build(storage, args.days, args.events)
    print(
        f"{len(index.clips(CAMERA))} clips indexed ({args.days} days), 360 on disk, "
        f"{args.events} events, built in {time.perf_counter() - started:.0f} s"
    )
    catalog = EventCatalog(storage)
    log = MotionLog(storage, CAMERA)
    end = index.clips(CAMERA)[-1].end
    rng = random.Random(3)
    load = busy()
    try:
        timeline(index, catalog, log, end - 86400 * args.days, end)  # the catalog's first read
        figures: dict[str, Any] = {
            "timeline_30d_ms": median_ms(
                lambda: timeline(index, catalog, log, end - 86400 * args.days, end), 15
            ),
            "timeline_1d_ms": median_ms(
                lambda: timeline(index, catalog, log, end - 86400, end), 25
            ),
            "anchor_listing_30d_ms": median_ms(lambda: anchor_listing(index, args.days), 5),
            "anchor_listing_1d_ms": median_ms(lambda: anchor_listing(index, 1), 5),
        }
        moments = [rng.uniform(hour0, hour1 - 60) for _ in range(args.moments)]
        ours = [first_frame_s(storage, index, m) for m in moments]
        theirs = [anchor_first_frame_s(storage, index, m) for m in moments]
        figures["playback_first_frame_s"] = statistics.median(ours)
        figures["playback_first_frame_max_s"] = max(ours)
        figures["anchor_first_frame_s"] = statistics.median(theirs)
        took, played, path = export_s(storage, index, hour0, hour1)
        figures["export_1h_s"] = took
        figures["export_1h_plays_s"] = played
        figures["anchor_hour_one_by_one_s"] = anchor_hour_s(index, hour0, hour1)
        path.unlink()

        # Fault round: clips of the hour deleted or cut short behind the index's back.
        clips = index.covering(CAMERA, hour0, hour1)
        for clip in rng.sample(clips[1:-1], 10):
            clip.path.unlink()
        for clip in rng.sample([c for c in clips[1:-1] if c.path.exists()], 10):
            with clip.path.open("r+b") as file:
                file.truncate(clip.path.stat().st_size // 3)
        gone = next(c for c in clips if not c.path.exists())
        faults = [first_frame_s(storage, index, gone.start + 3)] + [
            first_frame_s(storage, index, m) for m in moments[:5]
        ]
        figures["fault_playback_first_frame_s"] = max(faults)
        took, played, path = export_s(storage, index, hour0, hour1)
        figures["fault_export_1h_s"] = took
        figures["fault_export_plays_s"] = played
    finally:
        load.kill()
        load.wait()
    figures = {k: round(v, 4) for k, v in figures.items()}

    rows = [
        ("timeline, 30 days (ms)", "timeline_30d_ms", "anchor_listing_30d_ms"),
        ("timeline, 1 day (ms)", "timeline_1d_ms", "anchor_listing_1d_ms"),
        ("first frame from a moment (s)", "playback_first_frame_s", "anchor_first_frame_s"),
        (
            "the whole hour (s): export vs clips one by one",
            "export_1h_s",
            "anchor_hour_one_by_one_s",
        ),
    ]
    print(f"\n{'':50} {'pm_dvr':>10} {'media browser':>14} {'ratio':>7} {'target':>8}")
    for label, ours_key, theirs_key in rows:
        a, b = figures[ours_key], figures[theirs_key]
        print(
            f"{label:50} {a:10.3f} {b:14.3f} {a / b if b else float('nan'):7.2f} "
            f"{TARGETS[ours_key]:8.1f}"
        )
    print(
        f"export plays {figures['export_1h_plays_s']:.0f} s of 3600; slowest first frame "
        f"{figures['playback_first_frame_max_s']:.3f} s"
    )
    print(
        f"fault round (10 clips deleted, 10 truncated): first frame <= "
        f"{figures['fault_playback_first_frame_s']:.3f} s, export {figures['fault_export_1h_s']:.2f} s "
        f"playing {figures['fault_export_plays_s']:.0f} s"
    )
    print(
        "(the media browser shows days and hours, not the gaps, motion or events; it starts a "
        "clip at its beginning, not at the moment; it cannot join an hour)"
    )
    met = all(figures[k] <= v for k, v in TARGETS.items()) and figures["export_1h_plays_s"] > 3590
    figures["targets_met"] = met
    print("RESULT " + json.dumps(figures))


if __name__ == "__main__":
    main()
