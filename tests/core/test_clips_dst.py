"""Clip names and the clip index across DST changes (issue #16).

Clips are named in local time. When the clocks go back an hour of local times happens twice:
names in that hour carry their UTC offset, and names written before they did are placed by their
end (the file's modification time). When the clocks go forward an hour never happens. Each test
writes real files where the recorder puts them and scans them afresh, as Home Assistant does at
a restart, with `TZ` set to a zone that has DST.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator
import json
import os
from pathlib import Path
import time

import pytest

from custom_components.pm_dvr.core import walltime
from custom_components.pm_dvr.core.clips import (
    ClipIndex,
    _StartCache,
    clip_from_path,
    clip_name_order,
    clip_start_from_name,
    clip_starts_from_name,
)
from custom_components.pm_dvr.core.layout import clip_name, clip_path, recordings_dir
from custom_components.pm_dvr.core.media import EventCatalog, day_range, hour_buckets, hour_range
from custom_components.pm_dvr.core.recorder import recover_partials

from ..rig.clipfiles import make_clip

CAMERA = "porch"
STEP = 300  # a clip every 5 minutes ...
LENGTH = 290  # ... of 4 min 50 s, so a time inside a clip finds that clip alone


def utc(*fields: int) -> int:
    """Epoch seconds of a UTC time (year, month, day, hour[, minute, second])."""
    return calendar.timegm((*fields, 0, 0, 0)[:6])


# zone: (the instant the clocks go back, the repeated hour's key, first and second pass markers)
AUTUMN = {
    "Europe/Berlin": (utc(2026, 10, 25, 1), "2026-10-25", "02", "_p0200", "_p0100"),
    "America/New_York": (utc(2026, 11, 1, 6), "2026-11-01", "01", "_m0400", "_m0500"),
}
# zone: (the instant the clocks go forward, its day, the hours listed around the skipped one)
SPRING = {
    "Europe/Berlin": (utc(2026, 3, 29, 1), "2026-03-29", ["00", "01", "03", "04"]),
    "America/New_York": (utc(2026, 3, 8, 7), "2026-03-08", ["00", "01", "03", "04"]),
}


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Sets the process's time zone (the one names use); the previous one comes back after."""

    def use(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


def write(storage: Path, start: float, length: float = LENGTH, name: str | None = None) -> Path:
    """A clip where the recorder puts it (or under `name` in its day folder), dated by its end."""
    path = clip_path(storage, CAMERA, start)
    if name is not None:
        path = path.with_name(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (start + length, start + length))
    return path


def legacy_name(start: float, taken: set[str]) -> str:
    """The name versions without offset markers gave: local time, `-N` when already taken."""
    stem = time.strftime("%Y%m%d-%H%M%S", time.localtime(start))
    name, n = f"{stem}.mp4", 0
    while name in taken:
        n += 1
        name = f"{stem}-{n}.mp4"
    taken.add(name)
    return name


@pytest.mark.parametrize("tz", list(AUTUMN))
def test_autumn_repeat_every_clip_found_by_wall_time(
    zone: Callable[[str], None], tmp_path: Path, tz: str
) -> None:
    """Both passes of the repeated hour get their own names and read back to their own instant:
    a restart's scan keeps them in time order and each is found from the time in its name."""
    zone(tz)
    change, day, hour, first_mark, second_mark = AUTUMN[tz]
    starts = [change - 5400 + 7 + STEP * i for i in range(36)]  # 1.5 h either side
    paths = [write(tmp_path, start) for start in starts]
    names = [p.name for p in paths]
    assert len(set(names)) == len(names)
    for start, name in zip(starts, names, strict=True):
        if change - 3600 <= start < change:
            assert name.endswith(first_mark + ".mp4")
        elif change <= start < change + 3600:
            assert name.endswith(second_mark + ".mp4")
        else:
            assert len(name) == 19  # unambiguous times keep their plain names
    # The same wall times, once per pass.
    assert {n[:15] for n in names if first_mark in n} == {n[:15] for n in names if second_mark in n}

    index = ClipIndex(recordings_dir(tmp_path))
    assert index.scan() == len(starts)
    clips = index.clips(CAMERA)
    assert [c.start for c in clips] == starts
    assert [c.path for c in clips] == paths
    for clip in clips:
        assert clip_from_path(CAMERA, clip.path) == clip
        named = clip_start_from_name(clip.path.name)  # the wall time in the name, and its offset
        assert named == clip.start
        assert index.covering(CAMERA, named + 60, named + 60) == [clip]

    lo, hi = day_range(index.starts(CAMERA), day)
    assert (lo, hi) == (0, len(clips))
    assert [h.key for h in hour_buckets(index.starts(CAMERA), lo, hi)] == [
        f"{int(hour) - 1:02d}",
        hour,
        f"{int(hour) + 1:02d}",
    ]
    lo, hi = hour_range(index.starts(CAMERA), day, hour)
    assert clips[lo:hi] == [c for c in clips if change - 3600 <= c.start < change + 3600]
    assert hi - lo == 24  # twelve clips, twice


@pytest.mark.parametrize("tz", list(AUTUMN))
def test_names_from_before_markers_are_placed_by_their_end(
    zone: Callable[[str], None], tmp_path: Path, tz: str
) -> None:
    """Older versions named both passes alike (the second `-1` on a clash): a restart places
    each by its modification time, its end, as the pass that started last before it."""
    zone(tz)
    change = AUTUMN[tz][0]
    taken: set[str] = set()
    starts = [
        change - 1800,  # first pass, HH:30
        change - 300,  # first pass, ends ten minutes into the second
        change + 1800,  # second pass, HH:30 again: `-1`
        change + 2400,
    ]
    lengths = [LENGTH, 600, LENGTH, LENGTH]
    paths = [
        write(tmp_path, start, length, legacy_name(start, taken))
        for start, length in zip(starts, lengths, strict=True)
    ]
    assert paths[2].name == paths[0].name.replace(".mp4", "-1.mp4")
    (paths[0].parent / "notes.mp4").write_bytes(b"x")  # not a clip name: not indexed

    index = ClipIndex(recordings_dir(tmp_path))
    assert index.scan() == 4
    assert [c.start for c in index.clips(CAMERA)] == starts
    assert [c.path for c in index.clips(CAMERA)] == paths
    for path, start in zip(paths, starts, strict=True):
        clip = clip_from_path(CAMERA, path)
        assert clip is not None
        assert clip.start == start
        assert len(clip_starts_from_name(path.name) or ()) == 2
    # Without an end, the name alone reads as the first pass.
    assert clip_start_from_name(paths[3].name) == starts[3] - 3600
    assert clip_name_order(paths[2].name, starts[2] + LENGTH) == (starts[2], 1)


@pytest.mark.parametrize("tz", list(AUTUMN))
def test_crash_in_the_second_pass_from_an_older_version(
    zone: Callable[[str], None], tmp_path: Path, tz: str
) -> None:
    """A part an older version left in the second pass keeps its name (it does not lie in the
    future) and the restart's scan places it after the first pass by its end."""
    zone(tz)
    change = AUTUMN[tz][0]
    taken: set[str] = set()
    earlier = write(tmp_path, change - 1200, name=legacy_name(change - 1200, taken))
    start = change + 2400  # the same wall time again: `-1`
    final = earlier.with_name(legacy_name(start, taken))
    part = final.with_name(final.name + ".part")
    make_clip(part, seconds=2.0)
    os.utime(part, (start + 2, start + 2))
    assert recover_partials(tmp_path) == [final]
    index = ClipIndex(recordings_dir(tmp_path))
    assert index.scan() == 2
    assert [(c.path, c.start) for c in index.clips(CAMERA)] == [
        (earlier, change - 1200),
        (final, start),
    ]


@pytest.mark.parametrize("tz", list(SPRING))
def test_spring_forward_skips_an_hour(zone: Callable[[str], None], tmp_path: Path, tz: str) -> None:
    """No name falls in the skipped hour and none needs a marker; the hour is not listed. A
    stray name inside it reads as if the clocks had not moved yet, without an error."""
    zone(tz)
    change, day, hours = SPRING[tz]
    starts = [change - 5400 + 7 + STEP * i for i in range(36)]
    paths = [write(tmp_path, start) for start in starts]
    assert all(len(p.name) == 19 and p.name[9:11] != "02" for p in paths)
    stray = paths[0].with_name(f"{day.replace('-', '')}-023000.mp4")
    assert clip_start_from_name(stray.name) == change + 1800  # 02:30 read as 03:30
    assert clip_starts_from_name(stray.name) == (change + 1800,)
    assert _StartCache().start(stray.name) == change + 1800

    index = ClipIndex(recordings_dir(tmp_path))
    assert index.scan() == len(starts)
    clips = index.clips(CAMERA)
    assert [c.start for c in clips] == starts
    for clip in clips:
        assert clip_start_from_name(clip.path.name) == clip.start
    lo, hi = day_range(index.starts(CAMERA), day)
    assert [h.key for h in hour_buckets(index.starts(CAMERA), lo, hi)] == hours
    lo, hi = hour_range(index.starts(CAMERA), day, "02")
    assert lo == hi  # nothing


def test_offsets_with_seconds_and_zero(zone: Callable[[str], None]) -> None:
    """Markers hold any offset: Dublin's 1916 return from +00:34:39 to GMT, and London's
    autumn repeat between +01:00 and +00:00."""
    zone("Europe/Dublin")
    change = utc(1916, 10, 1, 2, 25, 21)
    before, after = clip_name(change - 600), clip_name(change + 600)
    assert before.endswith("_p003439.mp4")
    assert after.endswith("_p0000.mp4")
    assert clip_start_from_name(before) == change - 600
    assert clip_start_from_name(after) == change + 600
    zone("Europe/London")
    change = utc(2026, 10, 25, 1)
    assert clip_name(change - 1).endswith("015959_p0100.mp4")
    assert clip_name(change).endswith("010000_p0000.mp4")
    assert walltime.local_text(change - 1) == "2026-10-25 01:59:59 +01:00"
    assert walltime.local_text(change + 3600) == "2026-10-25 02:00:00"
    zone("America/New_York")
    assert walltime.local_text(utc(2026, 11, 1, 6, 30)) == "2026-11-01 01:30:00 -05:00"


def test_wall_times(zone: Callable[[str], None]) -> None:
    """A wall time is one instant, two in a repeated hour, none in a skipped one; whatever
    mktime guessed for a repeated time before, the first pass is always the one chosen."""
    zone("Europe/Berlin")
    assert walltime.instants((2026, 7, 1, 12)) == (utc(2026, 7, 1, 10),)
    both = (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30))
    assert walltime.instants((2026, 10, 25, 2, 30)) == both
    assert walltime.instants((2026, 3, 29, 2, 30)) == ()
    assert walltime.to_epoch((2026, 3, 29, 2)) == utc(2026, 3, 29, 1)  # the change itself
    for _ in range(3):
        time.mktime((2026, 10, 25, 2, 0, 0, 0, 0, -1))  # glibc's guess moves with its calls
        assert walltime.to_epoch((2026, 10, 25, 2)) == utc(2026, 10, 25, 0)
        assert walltime.to_epoch((2026, 10, 25, 2, 15)) == utc(2026, 10, 25, 0, 15)
    assert walltime.naive((2026, 12, 31, 24)) == utc(2027, 1, 1)  # fields carry over
    assert walltime.naive((2026, 13, 1)) == utc(2027, 1, 1)
    assert walltime.repeated(time.localtime(utc(2026, 10, 25, 0, 59)))
    assert not walltime.repeated(time.localtime(utc(2026, 10, 25, 2)))
    assert clip_start_from_name("00001025-023000.mp4") is None  # year 0
    assert _StartCache().start("00001025-023000.mp4") is None
    assert clip_start_from_name("20261025-023000_x0100.mp4") is None
    assert clip_start_from_name("20261025-023000_p0100-2.mp4") == utc(2026, 10, 25, 1, 30)
    assert clip_name_order("20261025-023000_p0100-2.mp4") == (utc(2026, 10, 25, 1, 30), 2)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_start_cache_matches_names_on_change_days(zone: Callable[[str], None], tz: str) -> None:
    """The scan's per-day shortcut gives what the names say, with or without marker and end."""
    zone(tz)
    cache = _StartCache()
    checked = 0
    changes = [utc(2026, 3, 8, 7), utc(2026, 3, 29, 1), utc(2026, 4, 4, 15)]
    changes += [utc(2026, 10, 3, 15, 30), utc(2026, 10, 25, 1), utc(2026, 11, 1, 6)]
    for change in changes:
        for start in range(change - 7200, change + 7200, 97):
            name = clip_name(start)
            plain = time.strftime("%Y%m%d-%H%M%S.mp4", time.localtime(start))
            assert cache.start(name) == clip_start_from_name(name) == start
            assert cache.start(plain, start + LENGTH) == clip_start_from_name(plain, start + LENGTH)
            assert cache.start(plain, start + LENGTH) == start
            checked += 1
    assert checked > 100


def test_event_clips_in_time_order(zone: Callable[[str], None], tmp_path: Path) -> None:
    """An event's links keep the recordings' names and times: both passes, marked or not, play
    in the order they were recorded."""
    zone("Europe/Berlin")
    change = AUTUMN["Europe/Berlin"][0]
    event_id = "20261025-022000-000_night"
    folder = tmp_path / "events" / event_id / CAMERA
    folder.mkdir(parents=True)
    taken: set[str] = set()
    starts = [change - 600, change - 300, change + 1200, change + 1500]
    names = [
        clip_name(starts[0]),  # marked, first pass
        legacy_name(starts[1], taken),  # 02:55 first pass, no marker
        clip_name(starts[2]),  # marked, second pass: 02:20 CET
        legacy_name(starts[3], taken),  # 02:25 second pass, no marker
    ]
    for name, start in zip(names, starts, strict=True):
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (start + LENGTH, start + LENGTH))
    doc = {"cameras": [CAMERA], "clips": {CAMERA: [{"name": n} for n in sorted(names)]}}
    (folder.parent / "event.json").write_text(json.dumps(doc))
    catalog = EventCatalog(tmp_path)
    summary = catalog.summary(event_id)
    assert summary is not None
    assert sorted(summary.clips[CAMERA]) == sorted(names)
    assert [p.name for p in catalog.clip_paths(summary, CAMERA)] == names
