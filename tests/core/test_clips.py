"""The clip index and the storage layout: names, scans, lookups by time, listeners."""

from __future__ import annotations

from collections.abc import Iterator
import gc
import os
from pathlib import Path
import random
import shutil
import time
import tracemalloc

import pytest

from custom_components.pm_dvr.core import clips as clips_module
from custom_components.pm_dvr.core.clips import (
    _CHUNK,
    Clip,
    ClipIndex,
    clip_from_path,
    clip_name_order,
    clip_start_from_name,
)
from custom_components.pm_dvr.core.errors import StorageError
from custom_components.pm_dvr.core.layout import (
    clip_path,
    ensure_storage,
    free_bytes,
    index_dir,
    recordings_dir,
    slugify,
)
from custom_components.pm_dvr.core.recorder import recover_partials

BASE = time.mktime((2026, 11, 22, 10, 0, 0, 0, 0, -1))


def make_clip(
    storage: Path, camera: str, start: float, length: float = 10, size: int = 100
) -> Path:
    """A clip file where the recorder puts it, its mtime at its end."""
    path = clip_path(storage, camera, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (start + length, start + length))
    return path


def test_names_round_trip() -> None:
    """A clip's name gives back its start; other names are not clips."""
    assert clip_start_from_name(clip_path(Path("/s"), "cam", BASE).name) == BASE
    assert clip_start_from_name("20261122-100000-1.mp4") == BASE
    assert clip_start_from_name("20261122-100000.mp4.part") is None
    assert clip_start_from_name("notes.txt") is None
    assert clip_path(Path("/s"), "cam", BASE) == Path(
        "/s/recordings/cam/2026-11-22/20261122-100000.mp4"
    )


def test_scan_builds_sorted_index(tmp_path: Path) -> None:
    """Scan finds clips per camera (sorted), skipping parts, strays and symlinks."""
    for i in (2, 0, 1):
        make_clip(tmp_path, "front", BASE + i * 10)
    make_clip(tmp_path, "back", BASE + 5)
    day = recordings_dir(tmp_path) / "front" / "2026-11-22"
    (day / "20261122-100100.mp4.part").write_bytes(b"p")
    (day / "readme.txt").write_text("x")
    (day / "20261122-100200.mp4").symlink_to(day / "20261122-100000.mp4")
    (recordings_dir(tmp_path) / "stray.mp4").write_bytes(b"x")
    (recordings_dir(tmp_path) / "front" / "loose.mp4").write_bytes(b"x")
    index = ClipIndex(recordings_dir(tmp_path))
    assert index.scan() == 4
    assert sorted(index.cameras()) == ["back", "front"]
    starts = [c.start for c in index.clips("front")]
    assert starts == [BASE, BASE + 10, BASE + 20]
    first = index.clips("front")[0]
    assert first.end == BASE + 10
    assert first.duration == 10
    assert first.size == 100
    assert first.inode == first.path.stat().st_ino
    assert index.count() == 4
    assert index.count("front") == 3
    assert index.total_size() == 400
    assert index.total_size("back") == 100
    assert [c.camera for c in index.oldest()] == ["front", "back", "front", "front"]
    assert ClipIndex(tmp_path / "missing").scan() == 0


def fields(clip: Clip | None) -> tuple[object, ...]:
    """Every field (Clip equality compares starts only)."""
    assert clip is not None
    return clip.start, clip.end, clip.camera, clip.path, clip.size, clip.inode


def test_scan_reads_what_clip_from_path_reads(tmp_path: Path) -> None:
    """Plain names (read from HHMMSS alone) and odd ones (an hour 24+ name, one in another
    day's folder) come out of a scan as clip_from_path describes them."""
    for i in range(5):
        make_clip(tmp_path, "cam", BASE + i * 86400 / 2 + i, size=10 + i)  # across days
    day = clip_path(tmp_path, "cam", BASE).parent
    late = day / "20261122-250000.mp4"
    late.write_bytes(b"late")
    os.utime(late, (BASE + 86400, BASE + 86400))
    moved = day.with_name("2026-11-20") / "20261122-110000.mp4"
    moved.parent.mkdir()
    moved.write_bytes(b"moved")
    index = ClipIndex(recordings_dir(tmp_path))
    assert index.scan() == 7
    clips = index.clips("cam")
    files = sorted(p for p in recordings_dir(tmp_path).rglob("*.mp4"))
    expected = sorted((clip_from_path("cam", p) for p in files), key=lambda c: c and c.start)
    assert [fields(c) for c in clips] == [fields(c) for c in expected]
    assert index.total_size() == sum(p.stat().st_size for p in files)


def every_field(index: ClipIndex) -> list[tuple[object, ...]]:
    return [fields(c) for camera in sorted(index.cameras()) for c in index.clips(camera)]


def test_saved_day_blocks_stand_in_for_unchanged_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Day folders untouched for a while are saved as blocks and read back instead of listed,
    until a clip is added or removed, the time zone changes or the block is damaged; the index
    is always the one a plain scan builds."""
    recordings, blocks = recordings_dir(tmp_path), index_dir(tmp_path)
    old = time.time() - 86400
    for day in range(3):
        for i in range(4):
            make_clip(tmp_path, "front", BASE + day * 86400 + i * 10, size=10 + i)
    make_clip(tmp_path, "back", BASE + 5)
    make_clip(tmp_path, "back", BASE + 86400 + 5)
    folders = sorted(p for p in recordings.glob("*/*") if p.is_dir())
    for folder in folders:
        os.utime(folder, (old, old))
    today = clip_path(tmp_path, "front", BASE + 3 * 86400).parent
    make_clip(tmp_path, "front", BASE + 3 * 86400)  # a folder still written to: never saved

    listed: list[str] = []
    real_scan_day = clips_module._scan_day

    def scan_day(cam: object, day_dir: str, day: str, starts: object) -> bool:
        listed.append(f"{os.path.basename(os.path.dirname(day_dir))}/{day}")
        return real_scan_day(cam, day_dir, day, starts)  # type: ignore[arg-type]

    monkeypatch.setattr(clips_module, "_scan_day", scan_day)

    def plain_scan() -> list[tuple[object, ...]]:
        index = ClipIndex(recordings)
        index.scan()
        return every_field(index)

    first = ClipIndex(recordings, blocks_dir=blocks)
    assert first.scan() == 15
    assert len(listed) == 6  # all listed once, the five quiet folders saved
    assert sorted(p.relative_to(blocks).as_posix() for p in blocks.rglob("*.idx")) == [
        f"{f.parent.name}/{f.name}.idx" for f in folders
    ]
    assert first.folders_to_scan() == [today]

    listed.clear()
    second = ClipIndex(recordings, blocks_dir=blocks)
    assert second.scan() == 15
    assert listed == ["front/" + today.name]  # the rest came from blocks
    assert every_field(second) == every_field(first) == plain_scan()
    assert (
        second.total_size()
        == first.total_size()
        == sum(p.stat().st_size for p in recordings.rglob("*.mp4"))
    )

    # A clip deleted from a quiet folder: that folder is listed again (and not saved while it
    # was just touched); blocks of folders and cameras that are gone are removed.
    clip_path(tmp_path, "front", BASE + 10).unlink()
    shutil.rmtree(folders[0].parent.parent / "back")
    listed.clear()
    third = ClipIndex(recordings, blocks_dir=blocks)
    assert third.scan() == 12
    assert sorted(listed) == sorted(["front/" + today.name, "front/" + folders[2].name])
    assert every_field(third) == plain_scan()
    assert not (blocks / "back").exists()

    # A damaged block and a changed time zone: listed again, never trusted.
    (blocks / "front" / f"{folders[3].name}.idx").write_bytes(b"PMDVRIX1")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        listed.clear()
        fourth = ClipIndex(recordings, blocks_dir=blocks)
        assert fourth.scan() == 12
        assert len(listed) == 4
        assert every_field(fourth) == plain_scan()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_blocks_that_cannot_be_written_leave_the_scan_alone(tmp_path: Path) -> None:
    """A read-only or missing blocks folder only costs the next start-up its speed."""
    make_clip(tmp_path, "cam", BASE)
    folder = clip_path(tmp_path, "cam", BASE).parent
    os.utime(folder, (BASE, BASE))
    (tmp_path / "blocks").write_text("a file where the folder should be")
    index = ClipIndex(recordings_dir(tmp_path), blocks_dir=tmp_path / "blocks")
    assert index.scan() == 1
    assert index.folders_to_scan() == [folder]


def test_crash_recovery_looks_in_changed_folders_only(tmp_path: Path) -> None:
    """A part in a folder the index saved is left to the next scan of it; one in a folder
    without a current block (where a crash writes) is recovered (here: removed, no frame)."""
    recordings, blocks = recordings_dir(tmp_path), index_dir(tmp_path)
    make_clip(tmp_path, "cam", BASE)
    quiet = clip_path(tmp_path, "cam", BASE).parent
    os.utime(quiet, (BASE, BASE))
    ClipIndex(recordings, blocks_dir=blocks).scan()
    busy = clip_path(tmp_path, "cam", BASE + 86400).parent
    busy.mkdir()
    (busy / "20261123-100000.mp4.part").write_bytes(b"")
    folders = ClipIndex(recordings, blocks_dir=blocks).folders_to_scan()
    assert folders == [busy]
    assert recover_partials(tmp_path, folders) == []
    assert not (busy / "20261123-100000.mp4.part").exists()


def test_clips_of_one_second_keep_their_order(tmp_path: Path) -> None:
    """`-N` clips came later in the same second: a scan puts them after their elder, in N
    order (plain string order would put `-1` first)."""
    day = clip_path(tmp_path, "cam", BASE).parent
    day.mkdir(parents=True)
    names = ["20261122-100000.mp4", "20261122-100000-1.mp4", "20261122-100000-2.mp4"]
    for n, name in enumerate(reversed([*names, "20261122-095959.mp4"])):
        (day / name).write_bytes(b"x")
        os.utime(day / name, (BASE + n, BASE + n))
    assert sorted(names)[0] == "20261122-100000-1.mp4"
    assert sorted(names, key=clip_name_order) == names
    assert clip_name_order("notes.txt") == (0.0, 0)
    index = ClipIndex(recordings_dir(tmp_path))
    assert index.scan() == 4
    assert [c.path.name for c in index.clips("cam")] == ["20261122-095959.mp4", *names]


def test_covering_window(tmp_path: Path) -> None:
    """Clips overlapping a window, including one that started before it."""
    index = ClipIndex(recordings_dir(tmp_path))
    for i in range(6):
        index.add(clip_from_path("cam", make_clip(tmp_path, "cam", BASE + i * 10)))  # type: ignore[arg-type]
    window = index.covering("cam", BASE + 15, BASE + 31)
    assert [c.start - BASE for c in window] == [10, 20, 30]
    assert index.covering("cam", BASE + 100, BASE + 200) == []
    assert index.covering("other", BASE, BASE + 10) == []


def test_coverage_merges_clips_into_recorded_spans(tmp_path: Path) -> None:
    """A timeline's recorded spans: clips less than COVERAGE_JOIN_S apart are one span, a
    longer gap is a hole, overlapping clips nest, and spans are cut to the window."""
    index = ClipIndex(recordings_dir(tmp_path))
    # (start, end) offsets: 0-30 in three clips with a 1-s reconnect gap, a hole, then an
    # overlap (a late clip) inside 60-90, and a lone clip at 200
    for start, end in ((0, 10), (11, 20), (20, 29.5), (60, 75), (70, 72), (74, 90), (200, 210)):
        path = clip_path(tmp_path, "cam", BASE + start)
        index.add(Clip(BASE + start, BASE + end, "cam", path, 10, int(start * 10) + 1))

    def spans(t0: float, t1: float, **kwargs: float) -> list[tuple[float, float]]:
        return [
            (s - BASE, e - BASE) for s, e in index.coverage("cam", BASE + t0, BASE + t1, **kwargs)
        ]

    assert spans(-100, 1000) == [(0, 29.5), (60, 90), (200, 210)]
    assert spans(5, 65) == [(5, 29.5), (60, 65)]  # cut to the window
    assert spans(12, 13) == [(12, 13)]  # inside one clip that started before the window
    assert spans(30, 59) == []  # the hole
    assert spans(-100, 1000, join=0.5) == [(0, 10), (11, 29.5), (60, 90), (200, 210)]
    assert spans(-100, 1000, join=200) == [(0, 210)]
    assert index.coverage("nobody", BASE, BASE + 100) == []


def test_coverage_of_a_month_is_one_span_a_day(tmp_path: Path) -> None:
    """248,400 clips of 10 s with an hour off each day: one span a day."""
    index = ClipIndex(recordings_dir(tmp_path))
    for day in range(30):
        for i in range(8280):  # 23 h of 10-s clips, then an hour off
            start = BASE + day * 86400 + i * 10
            index.add(Clip(start, start + 10, "cam", tmp_path / "x.mp4", 1, day * 10_000 + i + 1))
    got = index.coverage("cam", BASE - 10, BASE + 30 * 86400)
    assert len(got) == 30
    assert got[0] == (BASE, BASE + 82800)
    assert all(end - start == 82800 for start, end in got)


def test_add_out_of_order_remove_and_listeners(tmp_path: Path) -> None:
    """Late clips are inserted in order; listeners hear of adds until they unsubscribe."""
    index = ClipIndex(recordings_dir(tmp_path))
    heard: list[Clip] = []
    stop = index.add_listener(heard.append)
    late = Clip(BASE + 20, BASE + 30, "cam", tmp_path / "c.mp4", 1)
    early = Clip(BASE, BASE + 10, "cam", tmp_path / "a.mp4", 1)
    twin = Clip(BASE, BASE + 10, "cam", tmp_path / "a-1.mp4", 1)
    index.add(late)
    index.add(early)
    index.add(twin)
    assert [c.path.name for c in index.clips("cam")] == ["a.mp4", "a-1.mp4", "c.mp4"]
    assert heard == [late, early, twin]
    stop()
    stop()
    index.add(Clip(BASE + 40, BASE + 50, "cam", tmp_path / "d.mp4", 1))
    assert len(heard) == 3
    assert index.remove(twin)
    assert not index.remove(twin)
    assert not index.remove(Clip(BASE, BASE, "nobody", tmp_path / "x", 0))
    assert [c.path.name for c in index.clips("cam")] == ["a.mp4", "c.mp4", "d.mp4"]


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A time zone with DST (names then carry offset markers in the repeated hour)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def recount(index: ClipIndex, camera: str | None = None) -> tuple[int, int]:
    """Count and bytes by walking every clip, as the old index did on each status read."""
    cameras = [camera] if camera else index.cameras()
    clips = [c for name in cameras for c in index.clips(name)]
    return len(clips), sum(c.size for c in clips)


def test_totals_follow_random_adds_and_removes(tmp_path: Path) -> None:
    """Running counts and bytes, per camera and for the hub, equal a recount at every step."""
    rng = random.Random(17)
    index = ClipIndex(recordings_dir(tmp_path))
    live: list[Clip] = []
    for step in range(600):
        if live and rng.random() < 0.35:
            if rng.random() < 0.5:
                gone = [live.pop(rng.randrange(len(live))) for _ in range(min(len(live), 5))]
                assert index.remove_many(gone) == len(gone)
            else:
                assert index.remove(live.pop(rng.randrange(len(live))))
        else:
            camera = rng.choice(["front", "back"])
            start = BASE + rng.randrange(0, 5000) + rng.choice([0.0, 0.25])
            path = clip_path(tmp_path, camera, start)
            if rng.random() < 0.1:  # a later clip of the same second, or a stray path
                path = path.with_name(path.name[:-4] + f"-{step}.mp4")
            elif rng.random() < 0.05:
                path = tmp_path / f"elsewhere-{step}.mp4"
            clip = Clip(start, start + 10, camera, path, rng.randrange(1, 10**9), step + 1)
            index.add(clip)
            live.append(clip)
        if step % 50 == 0:
            assert (index.count(), index.total_size()) == recount(index)
            for camera in ("front", "back"):
                assert (index.count(camera), index.total_size(camera)) == recount(index, camera)
    assert (index.count(), index.total_size()) == recount(index)
    assert (index.count(), index.total_size()) == (len(live), sum(c.size for c in live))
    by_path = {c.path: c for c in live}
    for camera in index.cameras():
        clips = index.clips(camera)
        assert [c.start for c in clips] == sorted(c.start for c in clips)
        for clip in clips:
            old = by_path[clip.path]
            assert (clip.start, clip.end, clip.size, clip.inode) == (
                old.start,
                old.end,
                old.size,
                old.inode,
            )
    assert index.keyed_sizes() == {c.inode: c.size for c in live}
    assert index.remove_many(live) == len(live)
    assert (index.count(), index.total_size(), index.cameras()) == (0, 0, [])
    assert index.oldest_start() is None


def test_range_queries(tmp_path: Path) -> None:
    """covering, starting, starts and the oldest walk agree with a plain list of the clips."""
    index = ClipIndex(recordings_dir(tmp_path))
    made: list[Clip] = []
    for i in range(3 * _CHUNK):  # the walk crosses chunk boundaries
        for c, camera in enumerate(("a", "b")):
            start = BASE + i * 10 + c * 3
            clip = Clip(start, start + 9, camera, clip_path(tmp_path, camera, start), 10 + i, i)
            made.append(clip)
    for clip in reversed(made):  # out of order: inserted, not appended
        index.add(clip)
    a = [c for c in made if c.camera == "a"]
    assert list(index.starts("a")) == [c.start for c in a]
    assert index.starts("nobody").tolist() == []
    assert [c.path for c in index.starting("a", BASE + 100, BASE + 150)] == [
        c.path for c in a if BASE + 100 <= c.start < BASE + 150
    ]
    window = index.covering("a", BASE + 105, BASE + 121)
    assert [c.start - BASE for c in window] == [100, 110, 120]
    assert [c.path for c in index.oldest()] == [c.path for c in sorted(made)]
    assert sorted(c.path for c in index.heads()) == [made[0].path, made[1].path]
    assert index.oldest_start() == BASE


def test_oldest_walk_survives_removals(tmp_path: Path) -> None:
    """Retention removes what the walk gave it while walking: nothing is given twice or lost,
    clips of one second (same start) included."""
    index = ClipIndex(recordings_dir(tmp_path))
    made: list[Clip] = []
    for i in range(2 * _CHUNK + 10):
        start = BASE + i // 3  # three clips a second: ties across chunk boundaries
        path = clip_path(tmp_path, "cam", start)
        if i % 3:
            path = path.with_name(path.name[:-4] + f"-{i % 3}.mp4")
        made.append(Clip(start, start + 1, "cam", path, 1, i + 1))
        index.add(made[-1])
    given: list[Clip] = []
    for clip in index.oldest():
        given.append(clip)
        if len(given) % 7 == 0:
            assert index.remove_many(given[-7:]) == 7
    assert [c.path for c in given] == [c.path for c in made]
    assert index.count() == len(made) % 7


def test_paths_of_dst_and_suffixed_names(tmp_path: Path, berlin: None) -> None:
    """Names with an offset marker or `-N`, and names of a repeated hour without a marker, come
    back as they were added, also after the process's time zone changed."""
    change = time.mktime((2026, 10, 25, 2, 30, 0, 0, 0, 1))  # 02:30 CEST, the first pass
    starts = [change + k * 1800 for k in range(-2, 5)]  # around the repeated hour
    index = ClipIndex(recordings_dir(tmp_path))
    paths = [clip_path(tmp_path, "cam", start) for start in starts]
    assert any("_p0200" in p.name for p in paths)
    assert any("_p0100" in p.name for p in paths)
    unmarked = paths[2].with_name(paths[2].name.replace("_p0200", ""))
    twin = paths[0].with_name(paths[0].name[:-4] + "-1.mp4")
    added = [
        *(
            Clip(s, s + 60, "cam", p, 5, i)
            for i, (s, p) in enumerate(zip(starts, paths, strict=True))
        ),
        Clip(starts[2] + 0.5, starts[2] + 60, "cam", unmarked, 5, 90),
        Clip(starts[0], starts[0] + 60, "cam", twin, 5, 91),
    ]
    for clip in added:
        index.add(clip)
    expected = [(c.start, c.path) for c in sorted(added)]  # by start, then as added
    assert [(c.start, c.path) for c in index.clips("cam")] == expected
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    assert [(c.start, c.path) for c in index.clips("cam")] == expected
    assert index.remove(added[-1])
    assert index.remove(added[-2])
    assert index.count() == len(starts)


def test_odd_paths_come_back_as_added(tmp_path: Path) -> None:
    """Paths that are not the plain one of their start (an hour 24+ name, another folder, a
    name of another day) are kept as they are."""
    index = ClipIndex(recordings_dir(tmp_path))
    plain = clip_path(tmp_path, "cam", BASE)
    odd = [
        plain.with_name("20261122-250000.mp4"),  # a clip name (read as the next day's 01:00)
        plain.parent.with_name("2026-11-23") / plain.name,  # in another day's folder
        plain.with_name("20261121-100000.mp4"),  # a name of another day
        tmp_path / "cam" / plain.name,  # outside the day folders
    ]
    clips = [Clip(BASE + i, BASE + i + 1, "cam", path, 1, i + 1) for i, path in enumerate(odd)]
    for clip in [Clip(BASE - 1, BASE, "cam", plain, 1, 99), *clips]:
        index.add(clip)
    assert [c.path for c in index.clips("cam")] == [plain, *odd]
    assert index.remove_many(reversed(clips)) == len(clips)
    assert [c.path for c in index.clips("cam")] == [plain]


def test_memory_per_clip_is_small(tmp_path: Path) -> None:
    """A clip costs a few dozen bytes (no object per clip): loosely under 100 B."""
    n = 100_000
    clips = [
        Clip(start, start + 10, camera, clip_path(tmp_path, camera, start), 10**6, i)
        for camera in ("front", "back")
        for i, start in enumerate(BASE + k * 10.0 for k in range(n // 2))
    ]
    for clip in clips:
        str(clip.path)  # pathlib's own caches, made by the recorder too: not the index's
    gc.collect()
    tracemalloc.start()
    try:
        index = ClipIndex(recordings_dir(tmp_path))
        for clip in clips:
            index.add(clip)
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert index.count() == n
    assert held / n < 100


def test_clip_from_path(tmp_path: Path) -> None:
    """A path that is not a clip, or is gone, gives None."""
    assert clip_from_path("cam", tmp_path / "notes.txt") is None
    assert clip_from_path("cam", tmp_path / "20261122-100000.mp4") is None


def test_slugify() -> None:
    """Slugs are safe single path components."""
    assert slugify("Front Door") == "front-door"
    assert slugify("Çam!") == "cam"
    assert slugify("../../etc") == "etc"
    assert slugify("..") == ""
    assert slugify("a" * 80) == "a" * 40


def test_ensure_storage(tmp_path: Path) -> None:
    """Storage is created and proven writable, or a StorageError says why."""
    ensure_storage(tmp_path / "s")
    assert (tmp_path / "s" / "recordings").is_dir()
    assert not (tmp_path / "s" / ".pm_dvr_write_test").exists()
    with pytest.raises(StorageError, match="absolute"):
        ensure_storage(Path("relative"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="not writable"):
        ensure_storage(blocker / "s")


def test_free_bytes_of_missing_path(tmp_path: Path) -> None:
    """A folder that does not exist yet is measured on its nearest existing parent."""
    assert free_bytes(tmp_path / "a" / "b") == free_bytes(tmp_path) > 0
