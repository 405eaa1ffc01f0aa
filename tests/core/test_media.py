"""core/media.py: buckets by bisection, safe paths, the event catalog, event videos by stream copy."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
import shutil
import time

import av
import cv2
import numpy as np
import pytest

from custom_components.pm_dvr.core.clips import Clip
from custom_components.pm_dvr.core.errors import NoFootageError, StorageError
from custom_components.pm_dvr.core.media import (
    EventCatalog,
    MediaCache,
    MediaPathError,
    clip_file,
    day_buckets,
    day_range,
    event_time,
    export_file,
    export_name,
    export_range,
    exports,
    first_frame_jpeg,
    hour_buckets,
    hour_range,
    inside,
    keyframe_jpeg,
    playback_start,
    remux,
    remux_range,
    stream_range,
)
from custom_components.pm_dvr.core.writer import complete_end

from ..rig.clipfiles import make_clip

EVENT = "20251026-013000-000_night"


def clips_every(start: float, step: float, count: int) -> list[Clip]:
    return [
        Clip(start + i * step, start + i * step + step, "cam", Path(f"/x/{i}.mp4"), 1)
        for i in range(count)
    ]


def test_buckets_across_a_dst_night(berlin: None) -> None:
    """The repeated 02:00 hour is one bucket; days and hours count every clip once."""
    start = time.mktime((2025, 10, 25, 22, 0, 0, 0, 0, -1))
    clips = [c.start for c in clips_every(start, 600, 6 * 8)]  # 22:00 .. 05:00, every 10 min
    days = day_buckets(clips)
    assert [(d.key, d.count) for d in days] == [("2025-10-25", 12), ("2025-10-26", 36)]
    hours = hour_buckets(clips, days[1].first, days[1].first + days[1].count)
    assert [h.key for h in hours] == ["00", "01", "02", "03", "04"]
    assert {h.key: h.count for h in hours}["02"] == 12  # 02:00-03:00 twice
    assert sum(h.count for h in hours) == 36
    lo, hi = hour_range(clips, "2025-10-26", "02")
    assert hi - lo == 12
    assert hour_range(clips, "2025-10-26", "21") == (day_range(clips, "2025-10-26")[0],) * 2
    assert day_range(clips, "2025-10-27") == (len(clips), len(clips))


@pytest.mark.parametrize("day", ["2025-13-01", "2025-02-30", "../..", "2025-1-1"])
def test_bad_days_refused(day: str) -> None:
    with pytest.raises(MediaPathError):
        day_range([], day)


def test_bad_hour_refused() -> None:
    with pytest.raises(MediaPathError):
        hour_range([], "2025-01-01", "24")


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    (root / "recordings").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (root / "recordings" / "link").symlink_to(tmp_path / "secret")
    assert inside(root, "recordings") == (root / "recordings").resolve()
    for parts in (("..",), ("a/../..",), ("",), ("recordings", "link"), (".",), ("a\\b",)):
        with pytest.raises(MediaPathError):
            inside(root, *parts)
    with pytest.raises(MediaPathError):
        clip_file(root, Clip(0, 1, "cam", tmp_path / "secret", 1))
    with pytest.raises(MediaPathError):
        clip_file(root, Clip(0, 1, "cam", root / "recordings" / "cam" / "gone.mp4", 1))


def write_event(storage: Path, event_id: str, doc: object) -> Path:
    folder = storage / "events" / event_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "event.json").write_text(json.dumps(doc))
    return folder


def test_catalog_lists_newest_first_and_caches(tmp_path: Path) -> None:
    catalog = EventCatalog(tmp_path)
    assert catalog.ids() == []
    write_event(tmp_path, EVENT, {"label": "Night", "cameras": ["cam"], "clips": {}})
    later = "20251026-020000-000_later"
    write_event(
        tmp_path,
        later,
        {
            "trigger": "motion",
            "requested": {"start": "2025-10-26T02:00:00+00:00", "end": "2025-10-26T02:01:00+00:00"},
            "clips": {
                "cam": [{"name": "20251026-020000.mp4"}, {"name": "../x"}, "junk"],
                "../bad": [{"name": "20251026-020000.mp4"}],
                "other": "junk",
            },
        },
    )
    folder = tmp_path / "events" / later / "cam"
    folder.mkdir()
    (tmp_path / "secret.mp4").write_text("x")
    (folder / "20251026-020000.mp4").symlink_to(tmp_path / "secret.mp4")
    (tmp_path / "events" / "not-an-event").mkdir()
    (tmp_path / "events" / "20251026-030000-000_file").write_text("x")
    ids = catalog.ids()
    assert ids == [later, EVENT]
    assert catalog.ids() is ids  # folder unchanged: no listing
    summary = catalog.summary(later)
    assert summary is not None
    assert summary.cameras == ("cam",)  # no list of cameras: those with clips
    assert summary.clips == {"cam": ("20251026-020000.mp4",)}
    assert summary.duration() == 60
    assert summary.trigger == "motion"
    assert catalog.clip_paths(summary, "cam") == []  # a symlink out of the events folder
    (folder / "20251026-020000.mp4").unlink()
    (folder / "20251026-020000.mp4").write_text("clip")
    assert catalog.clip_paths(summary, "cam") == [(folder / "20251026-020000.mp4").resolve()]
    assert catalog.summary(later) is summary  # event.json unchanged: not parsed again
    night = catalog.summary(EVENT)
    assert night is not None
    assert night.duration() is None
    assert night.cameras == ("cam",)
    write_event(tmp_path, "20251026-040000-000_broken", None)
    (tmp_path / "events" / "20251026-050000-000_bad").mkdir()
    (tmp_path / "events" / "20251026-050000-000_bad" / "event.json").write_text("{")
    assert catalog.summary("20251026-040000-000_broken") is None
    assert catalog.summary("20251026-050000-000_bad") is None
    assert catalog.summary("20251026-060000-000_none") is None
    with pytest.raises(MediaPathError):
        catalog.summary("../events")
    shutil.rmtree(tmp_path / "events" / later)
    assert later not in catalog.ids()
    assert event_time(EVENT) == time.mktime((2025, 10, 26, 1, 30, 0, 0, 0, -1))
    assert event_time("nonsense") is None


def frames_and_times(path: Path) -> tuple[int, list[float], bool]:
    with av.open(str(path)) as inp:
        stream = inp.streams.video[0]
        dts = [float(p.dts * p.time_base) for p in inp.demux(stream) if p.dts is not None]
    with av.open(str(path)) as inp:
        frames = sum(1 for _ in inp.decode(inp.streams.video[0]))
        has_audio = bool(inp.streams.audio)
    return frames, dts, has_audio


def test_event_video_is_a_stream_copy_of_the_clips(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    cam = storage / "events" / EVENT / "cam"
    clips = [cam / f"20251026-01300{i}.mp4" for i in range(3)]
    for clip in clips:
        make_clip(clip, seconds=2.0, audio=True)
    broken = cam / "20251026-013009.mp4"
    broken.write_bytes(b"not a video")
    cache = MediaCache(storage)
    video = cache.event_video(EVENT, "cam", [*clips[:2], broken, clips[2]])
    frames, dts, has_audio = frames_and_times(video)
    assert frames == 60
    assert has_audio
    assert dts == sorted(dts)
    assert len(set(dts)) == len(dts)
    assert max(b - a for a, b in itertools.pairwise(dts)) < 0.5  # back to back
    assert 5.9 <= dts[-1] < 6.6  # each clip's audio (a little longer) keeps A/V in step
    with av.open(str(video)) as inp, av.open(str(clips[0])) as first:
        assert inp.streams.video[0].codec_context.extradata == (
            first.streams.video[0].codec_context.extradata
        )  # same bitstream: copied, not re-encoded
    mtime = video.stat().st_mtime_ns
    os.utime(video, (1, 1))
    again = cache.event_video(EVENT, "cam", [*clips[:2], broken, clips[2]])
    assert again == video
    assert video.stat().st_mtime_ns != 1  # touched: the cache keeps what is watched
    shorter = cache.event_video(EVENT, "cam", clips[:1])
    assert shorter != video
    assert not video.exists()  # the stale video of the same camera is gone
    assert frames_and_times(shorter)[0] == 20
    assert mtime
    with pytest.raises(MediaPathError):
        cache.event_video(EVENT, "cam", [])
    with pytest.raises(MediaPathError):
        cache.event_video(EVENT, "../cam", clips)
    with pytest.raises(MediaPathError):
        remux([broken], tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    assert not (tmp_path / "out.mp4.part").exists()


def test_thumbnail_and_prune(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    clip = storage / "events" / EVENT / "cam" / "20251026-013000.mp4"
    make_clip(clip)
    cache = MediaCache(storage)
    jpeg = cache.thumbnail(EVENT, clip)
    assert jpeg is not None
    assert jpeg[:2] == b"\xff\xd8"
    assert cache.thumbnail(EVENT, tmp_path / "missing.mp4") == jpeg  # cached per event
    assert first_frame_jpeg(tmp_path / "missing.mp4", 100) is None
    assert cache.thumbnail("20251026-020000-000_x", tmp_path / "missing.mp4") is None
    audio_only = tmp_path / "audio.mp4"
    with av.open(str(audio_only), "w", format="mp4") as out:
        out.add_stream("aac", rate=8000, layout="mono")
    assert first_frame_jpeg(audio_only, 100) is None

    video = cache.event_video(EVENT, "cam", [clip])
    other = cache.event_video("20251026-020000-000_x", "cam", [clip])
    now = time.time()
    assert cache.prune({EVENT, "20251026-020000-000_x"}, now=now) == 0
    assert cache.prune({EVENT}, now=now) > 0  # an event that is gone loses its cache
    assert not other.exists()
    assert video.exists()
    assert cache.prune(None, max_bytes=0, now=now, keep=video) > 0  # over size: oldest first
    assert video.exists()  # but never the file being served
    assert not (cache.root / EVENT / "thumbnail.jpg").exists()
    assert cache.prune(None, max_age=-1, now=now) > 0
    assert not cache.root.exists() or not any(cache.root.iterdir())
    (cache.root / "stray.bin").write_bytes(b"x")
    os.utime(cache.root / "stray.bin", (0, 0))
    assert cache.prune(None, now=now) == 1
    cache.clear()
    assert not cache.root.exists()
    assert cache.prune() == 0


def frame_times(path: Path) -> list[float]:
    """Presentation times (s) of every decoded video frame of a file."""
    with av.open(str(path)) as inp:
        stream = inp.streams.video[0]
        return [float(frame.pts * stream.time_base) for frame in inp.decode(stream)]


def make_clips(tmp_path: Path, audio: bool = False) -> list[tuple[Path, float]]:
    """Three 4-s clips (10 fps, a keyframe every second) back to back from wall time 1000."""
    sources = []
    for index in range(3):
        path = tmp_path / f"clip{index}.mp4"
        make_clip(path, seconds=4.0, audio=audio)
        sources.append((path, 1000.0 + 4 * index))
    return sources


def test_range_export_joins_clips_from_the_keyframe_before_t0_to_t1(tmp_path: Path) -> None:
    """The export of 1002.5-1009.3 begins at the keyframe of 1002.0, runs without a gap and
    ends at 1009.3: 20 + 40 + 14 frames, 0.1 s apart."""
    sources = make_clips(tmp_path)
    dest = tmp_path / "export.mp4"
    remux_range(sources, 1002.5, 1009.3, dest)
    times = frame_times(dest)
    assert len(times) == 20 + 40 + 14
    assert times == pytest.approx([i / 10 for i in range(len(times))], abs=0.011)
    assert not dest.with_name("export.mp4.part").exists()

    # a range inside one clip, not on a keyframe: from that clip's keyframe before it
    remux_range(sources[1:2], 1005.45, 1006.0, dest)
    assert len(frame_times(dest)) == 11  # 1005.0 .. 1006.0


def test_range_export_keeps_the_sound(tmp_path: Path) -> None:
    """Clips with sound: the export has it too, and lasts the range to within one GOP."""
    dest = tmp_path / "export.mp4"
    remux_range(make_clips(tmp_path, audio=True), 1002.5, 1009.3, dest)
    with av.open(str(dest)) as inp:
        assert inp.streams.audio
        assert sum(1 for _ in inp.decode(inp.streams.audio[0])) > 0
    times = frame_times(dest)
    assert 6.8 - 0.1 <= times[-1] - times[0] <= 6.8 + 1.0
    assert max(b - a for a, b in itertools.pairwise(times)) < 0.25  # no gap at the joins


def test_range_export_of_nothing_readable_fails_and_leaves_no_file(tmp_path: Path) -> None:
    """No clip can be read: an error, and neither the export nor its .part is left."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    dest = tmp_path / "export.mp4"
    with pytest.raises(MediaPathError):
        remux_range([(broken, 1000.0)], 1000.0, 1001.0, dest)
    assert list(tmp_path.iterdir()) == [broken]


def test_stream_range_plays_while_it_is_written(tmp_path: Path) -> None:
    """The streamed join is the export's frames, fragmented: its first pieces (header and the
    first GOP) decode before the rest is joined."""
    sources = make_clips(tmp_path)
    pieces: list[bytes] = []
    stream_range(sources, 1002.5, 1009.3, pieces.append)
    assert len(pieces) > 3  # handed over as it went, not at the end
    whole = tmp_path / "streamed.mp4"
    whole.write_bytes(b"".join(pieces))
    times = frame_times(whole)
    assert len(times) == 20 + 40 + 14
    assert times == pytest.approx([i / 10 for i in range(len(times))], abs=0.011)
    first = tmp_path / "first.mp4"
    for count in range(1, len(pieces) + 1):  # the fewest pieces that hold a whole fragment
        first.write_bytes(b"".join(pieces[:count]))
        if complete_end(first)[1]:
            break
    assert count < len(pieces) / 2
    with av.open(str(first)) as inp:  # they already show the first frame
        assert next(inp.decode(inp.streams.video[0])).pts == 0


def test_stream_range_stops_when_the_viewer_goes(tmp_path: Path) -> None:
    """An error raised by the writer (the viewer went away) ends the join."""
    sources = make_clips(tmp_path)
    written: list[bytes] = []

    def write(data: bytes) -> None:
        if len(written) == 2:
            raise ConnectionResetError
        written.append(data)

    with pytest.raises(ConnectionResetError):
        stream_range(sources, 1000.0, 1012.0, write)
    assert len(written) == 2


def test_playback_starts_on_the_keyframe_at_or_before_t(tmp_path: Path) -> None:
    """From 1005.45: the keyframe of 1005.0; from a gap before the footage: its first frame."""
    sources = make_clips(tmp_path)
    assert playback_start(sources[1:], 1005.45) == pytest.approx(1005.0)
    assert playback_start(sources, 990.0) == pytest.approx(1000.0)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    assert playback_start([(broken, 1000.0), *sources[1:]], 1000.5) == pytest.approx(1004.0)
    assert playback_start([(broken, 1000.0)], 1000.5) is None


def recorded_clips(storage: Path) -> list[Clip]:
    """make_clips' three clips where the recorder puts them, as the index lists them."""
    folder = storage / "recordings" / "cam" / "1970-01-01"
    folder.mkdir(parents=True)
    clips = []
    for path, start in make_clips(folder):
        clips.append(Clip(start, start + 4.0, "cam", path, path.stat().st_size))
    return clips


def test_export_range_writes_one_file_per_call_and_lists_them(tmp_path: Path) -> None:
    """Exports go under exports/<camera>/, named by start and length, a new name each time;
    `exports` lists them newest first and `export_file` serves only those."""
    clips = recorded_clips(tmp_path)
    first = export_range(tmp_path, "cam", clips, 1002.5, 1009.3, reserve=0)
    assert first.path.parent == tmp_path / "exports" / "cam"
    assert first.path.name == export_name(1002.5, 1009.3)
    assert first.size == first.path.stat().st_size
    assert len(frame_times(first.path)) == 20 + 40 + 14
    second = export_range(tmp_path, "cam", clips, 1002.5, 1009.3, reserve=0)
    assert second.path.name == first.path.name.replace(".mp4", "-1.mp4")
    os.utime(first.path, (1, 1))  # older
    (tmp_path / "exports" / "cam" / "notes.txt").write_text("not an export")
    (tmp_path / "exports" / "Not a camera!").mkdir()
    (tmp_path / "exports" / "cam2").write_text("a file where a camera's folder would be")
    assert exports(tmp_path) == [
        ("cam", second.path.name, second.size),
        ("cam", first.path.name, first.size),
    ]
    assert export_file(tmp_path, "cam", first.path.name) == first.path.resolve()
    for camera, name in (
        ("cam", "notes.txt"),
        ("cam", "19700101-000000_5s.mp4"),
        ("..", first.path.name),
        ("cam", "../cam/" + first.path.name),
    ):
        with pytest.raises(MediaPathError):
            export_file(tmp_path, camera, name)
    assert exports(tmp_path / "nothing here") == []


def test_export_range_refusals(tmp_path: Path) -> None:
    """No clip, only deleted or unreadable clips, or too little space: refused, nothing left."""
    clips = recorded_clips(tmp_path)
    with pytest.raises(NoFootageError):
        export_range(tmp_path, "cam", [], 1000.0, 1001.0, reserve=0)
    gone = Clip(900.0, 904.0, "cam", tmp_path / "recordings" / "cam" / "gone.mp4", 10)
    with pytest.raises(NoFootageError):
        export_range(tmp_path, "cam", [gone], 900.0, 901.0, reserve=0)
    broken = clips[0].path.with_name("broken.mp4")
    broken.write_bytes(b"not a video")
    with pytest.raises(NoFootageError):
        export_range(
            tmp_path, "cam", [Clip(900.0, 904.0, "cam", broken, 11)], 900.0, 901.0, reserve=0
        )
    with pytest.raises(StorageError):
        export_range(tmp_path, "cam", clips, 1000.0, 1012.0, reserve=2**62)
    assert not list((tmp_path / "exports").rglob("*.mp4*"))
    shutil.rmtree(tmp_path / "exports")
    (tmp_path / "exports").write_text("a file where the exports folder would be")
    with pytest.raises(StorageError):
        export_range(tmp_path, "cam", clips, 1000.0, 1012.0, reserve=0)


def test_keyframe_jpeg_is_the_keyframe_at_or_before_the_offset(tmp_path: Path) -> None:
    """Any offset gives a still of the right width; before the clip, its first frame; a file
    that is not a video, none."""
    path = tmp_path / "clip.mp4"
    make_clip(path, seconds=4.0)
    for offset in (-1.0, 0.0, 2.5, 99.0):
        jpeg = keyframe_jpeg(path, offset, 160)
        assert jpeg is not None
        assert jpeg[:2] == b"\xff\xd8"
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[1] == 160
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    assert keyframe_jpeg(broken, 1.0, 160) is None
