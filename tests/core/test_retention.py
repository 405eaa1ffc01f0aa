"""Retention on real files: quotas, ages, shared inodes, emergency on a small tmpfs, symlinks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import json
import os
from pathlib import Path
import shutil
import stat
import subprocess
import threading
import time

import pytest

from custom_components.pm_dvr.core.clips import (
    Clip,
    ClipIndex,
    _StartCache,
    clip_from_path,
    clip_start_from_name,
)
from custom_components.pm_dvr.core.layout import clip_path, events_dir, recordings_dir
from custom_components.pm_dvr.core.retention import (
    BYTES_PER_GB,
    Retention,
    RetentionConfig,
    RetentionResult,
)

from ..footage import BASE, CAMERAS, SIZE, gb, iso, make_clips, write_clip


def cfg(max_storage_gb: float, **limits: float) -> RetentionConfig:
    """Limits with no free-space floor: these tests must not depend on the disk they run on."""
    return RetentionConfig(max_storage_gb, **{"min_free_gb": 0, **limits})


def make_event(
    storage: Path,
    event_id: str,
    clips: list[Path],
    *,
    state: str = "complete",
    keep: bool = False,
    created: float = BASE,
    completed: float | None = BASE + 60,
) -> Path:
    """An event folder: hard links to recordings clips and an event.json."""
    folder = events_dir(storage) / event_id
    for clip in clips:
        target = folder / clip.parent.parent.name / clip.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(clip, target)
    write_event_json(folder, event_id, state=state, keep=keep, created=created, completed=completed)
    return folder


def write_event_json(
    folder: Path,
    event_id: str,
    *,
    state: str = "complete",
    keep: bool = False,
    created: float = BASE,
    completed: float | None = BASE + 60,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "id": event_id,
        "state": state,
        "keep": keep,
        "created": iso(created),
        "completed": iso(completed),
    }
    (folder / "event.json").write_text(json.dumps(meta))


def start_retention(storage: Path, config: RetentionConfig) -> Retention:
    index = ClipIndex(recordings_dir(storage))
    index.scan()
    retention = Retention(storage, index, config)
    retention.load()
    return retention


def disk_truth(storage: Path) -> tuple[int, int, int]:
    """(recordings bytes no event links, event bytes by unique inode, recordings clip count)."""
    rec: dict[int, int] = {}
    count = 0
    for root, _dirs, files in os.walk(recordings_dir(storage)):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if name.endswith(".mp4") and stat.S_ISREG(st.st_mode):
                rec[st.st_ino] = st.st_size
                count += 1
    ev: dict[int, int] = {}
    for root, _dirs, files in os.walk(events_dir(storage)):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if stat.S_ISREG(st.st_mode):
                ev[st.st_ino] = st.st_size
    return sum(s for i, s in rec.items() if i not in ev), sum(ev.values()), count


def assert_accounting_matches_disk(retention: Retention, storage: Path) -> None:
    usage = retention.usage()
    rec_bytes, ev_bytes, count = disk_truth(storage)
    assert (usage.recordings_bytes, usage.events_bytes) == (rec_bytes, ev_bytes)
    assert usage.recordings_count == count
    for camera in retention.index.cameras():
        for clip in retention.index.clips(camera):
            assert clip.path.is_file()


def remaining(storage: Path) -> set[Path]:
    return set(recordings_dir(storage).rglob("*.mp4"))


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    path = tmp_path / "storage"
    path.mkdir()
    return path


# The clip index scan


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_scan_start_times_equal_mktime_across_dst(monkeypatch: pytest.MonkeyPatch, tz: str) -> None:
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        cache = _StartCache()
        names = [
            f"2024{month:02d}{day:02d}-{hour:02d}{minute:02d}{second:02d}.mp4"
            for month in (3, 4, 10, 11)
            for day in (1, 3, 6, 7, 31)
            for hour in (0, 1, 2, 3, 23)
            for minute in (0, 29, 30, 59)
            for second in (0, 59)
        ]
        names += ["20240101-246060.mp4", "20240101-000000-2.mp4", "2024010x-000000.mp4", "a.mp4"]
        names += ["20240101-00000a.mp4", "20240101-000000.mp4.part"]
        assert [cache.start(n) for n in names] == [clip_start_from_name(n) for n in names]
        assert cache.start("a.mp4") is None
    finally:
        monkeypatch.undo()
        time.tzset()


def test_scan_indexes_only_regular_clip_files(storage: Path, tmp_path: Path) -> None:
    clips = make_clips(storage, per_camera=3)
    day = clips[0].parent
    (day / "20200101-000000.mp4.part").write_bytes(b"x")
    (day / "notes.txt").write_bytes(b"x")
    (day / "20200101-000001.mp4").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "20200101-000002.mp4").write_bytes(b"x")
    (day / "20200101-000003.mp4").symlink_to(outside / "20200101-000002.mp4")
    (day.parent / "2020-01-01").symlink_to(outside)
    (recordings_dir(storage) / "linked-camera").symlink_to(day.parent)
    (recordings_dir(storage) / "stray.mp4").write_bytes(b"x")
    index = ClipIndex(recordings_dir(storage))
    assert index.scan() == len(clips)
    assert [c.path for c in index.oldest()] == clips
    first = next(index.oldest())
    again = clip_from_path(first.camera, first.path)
    assert again is not None
    fields = ("start", "end", "camera", "path", "size", "inode")
    assert [getattr(first, f) for f in fields] == [getattr(again, f) for f in fields]
    assert index.oldest_start() == first.start
    assert sorted(h.path for h in index.heads()) == sorted(
        next(c for c in clips if c.parent.parent.name == camera) for camera in CAMERAS
    )
    assert ClipIndex(storage / "missing").scan() == 0
    assert ClipIndex(storage / "missing").oldest_start() is None


def test_remove_many_keeps_order(storage: Path) -> None:
    clips = make_clips(storage, per_camera=5)
    index = ClipIndex(recordings_dir(storage))
    index.scan()
    every = list(index.oldest())
    gone = [*every[::2], Clip(1.0, 2.0, "nobody", Path("/x"), 1)]
    assert index.remove_many(gone) == len(every[::2])
    assert list(index.oldest()) == every[1::2]
    assert [c.path for c in index.oldest()] == clips[1::2]


# Recordings quota


def test_quota_deletes_oldest_first_across_cameras(storage: Path) -> None:
    clips = make_clips(storage, per_camera=10)
    keep = 12
    retention = start_retention(storage, cfg(max_storage_gb=gb(keep * SIZE)))
    assert retention.usage().recordings_bytes == len(clips) * SIZE
    assert retention.over_quota()

    result = retention.enforce()

    assert result == RetentionResult(
        files_deleted=len(clips) - keep, bytes_freed=(len(clips) - keep) * SIZE
    )
    assert remaining(storage) == set(clips[-keep:])
    assert retention.usage().recordings_bytes == keep * SIZE
    assert not retention.over_quota()
    assert retention.enforce() == RetentionResult()
    assert_accounting_matches_disk(retention, storage)


def test_quota_holds_as_clips_close(storage: Path) -> None:
    """Enforcing when the hook says so keeps usage within one clip per camera of the quota."""
    make_clips(storage, per_camera=2)
    quota = 9 * SIZE
    triggered: list[bool] = []
    index = ClipIndex(recordings_dir(storage))
    index.scan()
    retention = Retention(
        storage,
        index,
        cfg(max_storage_gb=gb(quota)),
        on_over_quota=lambda: triggered.append(True),
    )
    retention.load()
    retention.load()  # idempotent: one subscription, same accounting
    peak = 0
    for i in range(2, 12):
        for c, camera in enumerate(CAMERAS):
            start = BASE + i * 60 + c * 7
            clip = clip_from_path(camera, write_clip(storage, camera, start))
            assert clip is not None
            index.add(clip)
        peak = max(peak, disk_truth(storage)[0])
        if triggered:
            triggered.clear()
            retention.enforce()
        assert disk_truth(storage)[0] <= quota
    assert quota < peak <= quota + len(CAMERAS) * SIZE
    assert_accounting_matches_disk(retention, storage)
    retention.close()
    retention.close()
    index.add(Clip(BASE + 10_000, BASE + 10_060, "front", storage / "x.mp4", 5 * quota, 0))
    assert retention.usage().recordings_bytes <= quota  # no longer listening


def test_on_clip_added_reports_over_quota(storage: Path) -> None:
    clips = make_clips(storage, per_camera=2)
    retention = start_retention(storage, cfg(max_storage_gb=gb(len(clips) * SIZE)))
    assert not retention.over_quota()
    clip = clip_from_path("front", write_clip(storage, "front", BASE + 3600))
    assert clip is not None
    assert retention.on_clip_added(clip)
    assert retention.on_clip_added(clip)
    assert retention.usage().recordings_bytes == (len(clips) + 1) * SIZE  # counted once


# Shared inodes


def test_event_clips_counted_once_and_survive_until_their_event_goes(storage: Path) -> None:
    clips = make_clips(storage, per_camera=10)
    shared = clips[:5]
    make_event(storage, "e1", shared, created=BASE, completed=BASE + 100)
    make_event(storage, "e2", shared[2:], created=BASE + 200, completed=BASE + 300)
    json_bytes = sum((events_dir(storage) / e / "event.json").stat().st_size for e in ("e1", "e2"))
    quota_clips = 8
    retention = start_retention(storage, cfg(max_storage_gb=gb(quota_clips * SIZE)))
    usage = retention.usage()
    assert usage.events_bytes == 5 * SIZE + json_bytes
    assert usage.shared_bytes == 5 * SIZE
    assert usage.recordings_bytes == (len(clips) - 5) * SIZE
    assert usage.events_count == 2

    result = retention.enforce()

    exclusive = clips[5:]
    assert remaining(storage) == set(exclusive[-quota_clips:])
    assert result.files_deleted == len(clips) - quota_clips
    assert result.bytes_freed == (len(exclusive) - quota_clips) * SIZE  # shared links free nothing
    assert result.events_deleted == 0
    for clip in shared:
        linked = events_dir(storage) / "e1" / clip.parent.parent.name / clip.name
        assert linked.stat().st_size == SIZE
        assert linked.stat().st_nlink == (2 if clip in shared[2:] else 1)
    assert retention.usage().recordings_bytes == quota_clips * SIZE
    assert_accounting_matches_disk(retention, storage)

    retention.set_config(
        cfg(max_storage_gb=gb(quota_clips * SIZE), max_event_storage_gb=gb(4 * SIZE))
    )
    assert retention.config.max_event_storage_gb == gb(4 * SIZE)
    result = retention.enforce()
    assert result.events_deleted == 1  # e1, the oldest: only its two own clips are freed
    assert not (events_dir(storage) / "e1").exists()
    assert (events_dir(storage) / "e2").is_dir()
    e1_json = json_bytes - (events_dir(storage) / "e2" / "event.json").stat().st_size
    assert result.bytes_freed == 2 * SIZE + e1_json
    assert result.files_deleted == 6
    assert retention.usage().events_bytes == 3 * SIZE + json_bytes - e1_json
    assert_accounting_matches_disk(retention, storage)


def test_deleted_event_gives_its_clips_back_to_the_recordings_quota(storage: Path) -> None:
    clips = make_clips(storage, per_camera=4)
    make_event(storage, "old", clips[:6], completed=BASE + 60)
    json_size = (events_dir(storage) / "old" / "event.json").stat().st_size
    retention = start_retention(storage, cfg(max_storage_gb=gb(6 * SIZE)))
    assert retention.enforce().files_deleted == 0  # recordings own exactly 6 clips
    retention.set_config(cfg(max_storage_gb=gb(6 * SIZE), max_event_age_days=1))

    result = retention.enforce()

    # The event goes (age); its clips are recordings-only again and the oldest of them go too.
    assert result.events_deleted == 1
    assert remaining(storage) == set(clips[-6:])
    assert result.bytes_freed == 6 * SIZE + json_size  # the clips' last links went
    assert result.files_deleted == 7 + 6
    assert retention.usage().events_bytes == 0
    assert retention.usage().recordings_bytes == 6 * SIZE
    assert not events_dir(storage).joinpath("old").exists()
    assert_accounting_matches_disk(retention, storage)


def test_quota_never_empties_recordings_for_event_bytes(storage: Path) -> None:
    clips = make_clips(storage, per_camera=6)
    make_event(storage, "big", clips[:12], keep=True)
    retention = start_retention(storage, cfg(max_storage_gb=gb(4 * SIZE)))
    retention.enforce()
    assert len(remaining(storage)) == 4
    assert remaining(storage) == set(clips[-4:])
    assert len(list((events_dir(storage) / "big").rglob("*.mp4"))) == 12


# Events


def test_event_quota_spares_keep_and_in_progress(storage: Path) -> None:
    clips = make_clips(storage, per_camera=4)
    make_event(storage, "a-kept", clips[0:2], keep=True, created=BASE, completed=BASE + 10)
    make_event(
        storage, "b-recording", clips[2:4], state="recording", created=BASE + 5, completed=None
    )
    make_event(storage, "c-old", clips[4:6], created=BASE + 20, completed=BASE + 30)
    make_event(storage, "d-mid", clips[6:8], created=BASE + 40, completed=BASE + 50)
    make_event(storage, "e-new", clips[8:10], created=BASE + 60, completed=BASE + 70)
    json_sizes = {p.name: (p / "event.json").stat().st_size for p in events_dir(storage).iterdir()}
    retention = start_retention(
        storage,
        cfg(max_storage_gb=gb(10**9), max_event_storage_gb=gb(7 * SIZE)),
    )
    assert retention.usage().events_protected == 2
    assert retention.over_quota()

    result = retention.enforce()

    left = {p.name for p in events_dir(storage).iterdir()}
    assert left == {"a-kept", "b-recording", "e-new"}  # 3 events of 2 clips: 6 clips + json < 7
    assert result.events_deleted == 2
    assert result.bytes_freed == json_sizes["c-old"] + json_sizes["d-mid"]  # clips: in recordings
    assert remaining(storage) == set(clips)
    assert_accounting_matches_disk(retention, storage)

    retention.set_config(cfg(max_storage_gb=gb(10**9), max_event_storage_gb=gb(1)))
    assert retention.enforce().events_deleted == 1  # e-new
    # Only kept and in-progress events are left: nothing more can go, even far over quota.
    assert not retention.over_quota()
    assert retention.enforce().events_deleted == 0
    assert {p.name for p in events_dir(storage).iterdir()} == {"a-kept", "b-recording"}


def test_keep_written_on_disk_is_honoured_before_delete(storage: Path) -> None:
    clips = make_clips(storage, per_camera=2)
    folder = make_event(storage, "ev", clips[:2])
    retention = start_retention(storage, cfg(max_storage_gb=gb(10**9), max_event_age_days=1))
    assert retention.over_quota()
    write_event_json(folder, "ev", keep=True)  # the glue has not told retention yet
    assert retention.enforce().events_deleted == 0
    assert (folder / "event.json").is_file()
    assert retention.usage().events_protected == 1
    assert not retention.over_quota()


def test_event_hooks(storage: Path) -> None:
    clips = make_clips(storage, per_camera=3)
    retention = start_retention(storage, cfg(max_storage_gb=gb(10**9)))
    folder = make_event(storage, "live", clips[:2], state="recording", completed=None)
    assert retention.event_added(folder / "event.json")
    assert retention.usage().shared_bytes == 2 * SIZE
    assert retention.usage().events_protected == 1
    (folder / clips[2].parent.parent.name).mkdir(exist_ok=True)
    os.link(clips[2], folder / clips[2].parent.parent.name / clips[2].name)
    write_event_json(folder, "live", state="complete")
    assert retention.refresh_event("live")
    usage = retention.usage()
    assert usage.shared_bytes == 3 * SIZE
    assert usage.events_protected == 0
    assert_accounting_matches_disk(retention, storage)
    # A clip linked into the event before the index hears of it counts toward events only.
    late = write_clip(storage, "front", BASE + 3600)
    os.link(late, folder / "front" / late.name)
    assert retention.refresh_event("live")
    late_clip = clip_from_path("front", late)
    assert late_clip is not None
    retention.index.add(late_clip)
    assert retention.usage().shared_bytes == 4 * SIZE
    assert_accounting_matches_disk(retention, storage)

    shutil.rmtree(folder)
    retention.event_removed("live")
    assert retention.usage().events_bytes == 0
    assert retention.usage().recordings_bytes == (len(clips) + 1) * SIZE
    assert not retention.refresh_event("live")
    assert not retention.refresh_event("..")
    assert not retention.event_added(storage / "elsewhere" / "x")
    assert not retention.event_added(events_dir(storage) / ".." / "recordings")


def test_unreadable_event_json_protects_the_event(storage: Path) -> None:
    clips = make_clips(storage, per_camera=2)
    folder = make_event(storage, "broken", clips[:2])
    (folder / "event.json").write_text("{not json")
    bare = events_dir(storage) / "bare"
    bare.mkdir()
    (bare / "thumb.jpg").write_bytes(b"x" * 100)
    listed = make_event(storage, "listed", clips[2:3])
    (listed / "event.json").write_text("[1, 2]")
    dated = make_event(storage, "bad-dates", clips[3:4], keep=True)
    meta = json.loads((dated / "event.json").read_text())
    (dated / "event.json").write_text(json.dumps({**meta, "completed": "soon", "created": 5}))
    (events_dir(storage) / ".staging").mkdir()
    retention = start_retention(
        storage,
        cfg(max_storage_gb=gb(10**9), max_event_storage_gb=gb(1), max_event_age_days=1),
    )
    assert retention.usage().events_count == 4
    assert retention.enforce().events_deleted == 0
    assert dated.is_dir()
    assert folder.is_dir()
    assert bare.is_dir()
    assert listed.is_dir()


# Ages


def test_age_limits_for_recordings_and_events(storage: Path) -> None:
    now = time.time()
    old = make_clips(storage, per_camera=3, base=BASE)
    recent = make_clips(storage, per_camera=2, base=(now // 60) * 60 - 7200)
    make_event(storage, "old-done", old[:2], created=BASE, completed=BASE + 60)
    make_event(storage, "old-live", old[2:4], state="recording", created=BASE, completed=None)
    make_event(storage, "new-done", recent[:1], created=now - 3600, completed=now - 3000)
    json_size = (events_dir(storage) / "old-done" / "event.json").stat().st_size
    retention = start_retention(
        storage, cfg(max_storage_gb=0, max_age_days=2, max_event_age_days=2)
    )
    assert retention.over_quota()

    result = retention.enforce()

    assert result.events_deleted == 1
    assert {p.name for p in events_dir(storage).iterdir()} == {"old-live", "new-done"}
    assert remaining(storage) == set(recent)
    old_live_clips = list((events_dir(storage) / "old-live").rglob("*.mp4"))
    assert len(old_live_clips) == 2
    # old-done's clips are freed with their recordings links; old-live's stay in the event.
    assert result.bytes_freed == json_size + (len(old) - 2) * SIZE
    assert result.files_deleted == 3 + len(old)
    assert not retention.over_quota()
    assert_accounting_matches_disk(retention, storage)


def test_age_keeps_a_clip_that_runs_past_the_cutoff(storage: Path) -> None:
    now = time.time()
    start = now - 86400 - 30  # starts before the one-day cutoff, ends after it
    path = write_clip(storage, "front", start)
    os.utime(path, (start + 60, start + 60))
    older = write_clip(storage, "garden", start - 600)
    retention = start_retention(storage, cfg(max_storage_gb=0, max_age_days=1))
    assert retention.over_quota()
    assert retention.enforce().files_deleted == 1
    assert not retention.over_quota()
    retention.set_config(cfg(0))  # no limit at all: nothing to do
    assert retention.cleanup() == RetentionResult()
    assert remaining(storage) == {path}
    assert remaining(storage) == {path}
    assert not older.exists()


# Manual cleanup and folders


def test_cleanup_target_shrinks_once_and_reports(storage: Path) -> None:
    clips = make_clips(storage, per_camera=10)
    retention = start_retention(storage, cfg(max_storage_gb=gb(20 * SIZE)))
    first = retention.cleanup()
    assert first.files_deleted == len(clips) - 20
    assert first.bytes_freed == (len(clips) - 20) * SIZE

    result = retention.cleanup(gb(5 * SIZE))

    assert result.files_deleted == 15
    assert result.bytes_freed == 15 * SIZE
    assert remaining(storage) == set(clips[-5:])
    assert retention.enforce().files_deleted == 0  # the target applied once, the quota is higher
    assert retention.cleanup(0).files_deleted == 5
    assert not any(recordings_dir(storage).iterdir())  # empty day and camera folders removed
    assert_accounting_matches_disk(retention, storage)


def test_empty_folders_removed_but_not_today_or_partial(storage: Path) -> None:
    old = make_clips(storage, per_camera=2)
    midnight = time.mktime((*time.localtime()[:3], 0, 0, 0, 0, 0, -1))
    today_start = max(midnight, (time.time() // 60) * 60 - 60)
    today_clip = write_clip(storage, "front", today_start)
    part = write_clip(storage, "garden", BASE + 30).with_suffix(".mp4.part")
    clip_path(storage, "garden", BASE + 30).rename(part)
    retention = start_retention(storage, cfg(max_storage_gb=gb(10**9)))
    result = retention.cleanup(0)
    assert result.files_deleted == len(old) + 1
    assert not (recordings_dir(storage) / "garage").exists()
    assert not (recordings_dir(storage) / "front" / old[0].parent.name).exists()
    assert today_clip.parent.is_dir()  # today's folder stays for the recorder
    assert part.is_file()  # a clip being written is never touched


# Safety


def test_symlinks_and_outside_files_are_never_deleted(storage: Path, tmp_path: Path) -> None:
    clips = make_clips(storage, per_camera=3)
    outside = tmp_path / "outside"
    (outside / "cam").mkdir(parents=True)
    victim = outside / "20000101-000000.mp4"
    victim.write_bytes(b"precious")
    (outside / "cam" / "20000101-000001.mp4").write_bytes(b"precious")
    day = clips[0].parent
    (day / "19990101-000000.mp4").symlink_to(victim)  # a symlinked clip name, oldest of all
    (recordings_dir(storage) / "front" / "1999-01-01").symlink_to(outside)
    (recordings_dir(storage) / "evil").symlink_to(outside)
    (storage / "20000101-000000.mp4").write_bytes(b"not a recording")
    folder = make_event(storage, "ev", clips[:2])
    (folder / "front" / "link.mp4").symlink_to(victim)
    (folder / "outside-dir").symlink_to(outside)
    (events_dir(storage) / "linked-event").symlink_to(outside)
    retention = start_retention(storage, cfg(max_storage_gb=gb(10**9), max_event_storage_gb=gb(1)))
    # Clips that a buggy caller put in the index: outside, escaping with "..", or a .part.
    for fake in (
        victim,
        recordings_dir(storage) / "front" / ".." / ".." / "20000101-000000.mp4",
        recordings_dir(storage) / "front" / "2000-01-01" / "20000101-000000.mp4.part",
        recordings_dir(storage) / "evil" / "cam" / "20000101-000001.mp4",
    ):
        retention.index.add(Clip(0.0, 1.0, "front", fake, 8, 0))

    result = retention.cleanup(0)

    assert result.events_deleted == 1
    assert victim.read_bytes() == b"precious"
    assert (outside / "cam" / "20000101-000001.mp4").read_bytes() == b"precious"
    assert (storage / "20000101-000000.mp4").is_file()
    assert (day / "19990101-000000.mp4").is_symlink()
    assert (recordings_dir(storage) / "evil").is_symlink()
    assert (recordings_dir(storage) / "front" / "1999-01-01").is_symlink()
    assert (events_dir(storage) / "linked-event").is_symlink()
    assert (folder / "front" / "link.mp4").is_symlink()  # left, so the folder stays
    assert not (folder / "event.json").exists()
    assert remaining(storage) == {day / "19990101-000000.mp4"}  # only the symlink
    assert retention.usage().recordings_count == 0


def test_clip_replaced_after_indexing_is_not_deleted(storage: Path, tmp_path: Path) -> None:
    clips = make_clips(storage, per_camera=2)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    retention = start_retention(storage, cfg(max_storage_gb=gb(10**9)))
    clips[0].unlink()
    clips[0].symlink_to(victim)  # swapped for a symlink after the scan
    other = clips[1].with_name("tmp")
    other.write_bytes(b"another file")
    other.replace(clips[1])  # a different inode under the same name
    clips[2].unlink()  # already gone
    result = retention.cleanup(0)
    assert result.files_deleted == len(clips) - 3
    assert victim.read_bytes() == b"precious"
    assert clips[0].is_symlink()
    assert clips[1].read_bytes() == b"another file"
    assert retention.usage().recordings_count == 0
    assert retention.usage().recordings_bytes == 0


def test_missing_storage_never_raises(tmp_path: Path) -> None:
    retention = start_retention(tmp_path / "gone", cfg(max_storage_gb=1))
    assert retention.enforce() == RetentionResult()
    assert retention.usage().free_bytes is None
    assert not retention.refresh_event("x")
    assert not retention.over_quota()
    (tmp_path / "gone").mkdir()
    assert not retention.refresh_event("x")  # no events folder yet


def test_unwritable_files_are_skipped_not_fatal(
    storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips = make_clips(storage, per_camera=4)
    retention = start_retention(storage, cfg(max_storage_gb=gb(6 * SIZE)))
    real_unlink, real_stat = os.unlink, os.stat

    def failing_unlink(path: str, *, dir_fd: int | None = None) -> None:
        if path == clips[0].name:
            raise PermissionError(13, "denied")
        real_unlink(path, dir_fd=dir_fd)

    def failing_stat(
        path: str, *, dir_fd: int | None = None, follow_symlinks: bool = True
    ) -> os.stat_result:
        if path == clips[1].name:
            raise PermissionError(13, "denied")
        return real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(os, "unlink", failing_unlink)
    monkeypatch.setattr(os, "stat", failing_stat)
    result = retention.enforce()
    monkeypatch.undo()
    assert clips[0].exists()
    assert clips[1].exists()
    # Two could not go and still take space: the quota is met by deleting newer ones instead.
    assert result.files_deleted == 6
    assert remaining(storage) == {clips[0], clips[1], *clips[-4:]}
    assert retention.usage().recordings_bytes == 6 * SIZE


def test_event_with_an_undeletable_file_stays_whole_until_next_run(
    storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips = make_clips(storage, per_camera=2)
    folder = make_event(storage, "ev", clips[:3])
    retention = start_retention(storage, cfg(gb(10**9), max_event_age_days=1))
    stuck = clips[1].name
    real_unlink = os.unlink

    def failing_unlink(path: str, *, dir_fd: int | None = None) -> None:
        if path == stuck:
            raise PermissionError(13, "denied")
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", failing_unlink)
    result = retention.enforce()
    monkeypatch.undo()
    assert result.events_deleted == 0
    assert (folder / "event.json").is_file()  # still an event, still deletable
    assert retention.over_quota()
    assert_accounting_matches_disk(retention, storage)
    result = retention.enforce()
    assert result.events_deleted == 1
    assert not folder.exists()
    assert_accounting_matches_disk(retention, storage)


# Concurrency


def test_recorder_threads_add_while_enforcing(storage: Path) -> None:
    make_clips(storage, per_camera=100, size=500)
    index = ClipIndex(recordings_dir(storage))
    index.scan()
    retention = Retention(storage, index, cfg(max_storage_gb=gb(60 * 500)))
    retention.load()
    stop = threading.Event()

    errors: list[BaseException] = []

    def recorder(c: int, camera: str) -> None:
        i = 1000
        try:
            while not stop.is_set() and i < 1200:
                start = BASE + i * 60 + c * 7
                try:
                    path = write_clip(storage, camera, start, 500)
                # Its day folder was just pruned (after mkdir found it, or between mkdir's own
                # two looks at it, which pathlib reports as FileExistsError): make it again.
                except (FileNotFoundError, FileExistsError):
                    path = write_clip(storage, camera, start, 500)
                clip = clip_from_path(camera, path)
                assert clip is not None
                index.add(clip)  # freed inode numbers get reused here: the accounting must cope
                i += 1
        except BaseException as err:
            errors.append(err)
            raise

    threads = [threading.Thread(target=recorder, args=(c, cam)) for c, cam in enumerate(CAMERAS)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        retention.enforce()
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    retention.enforce()
    assert disk_truth(storage)[0] <= 60 * 500
    assert_accounting_matches_disk(retention, storage)


async def test_async_wrappers(storage: Path) -> None:
    clips = await asyncio.to_thread(make_clips, storage, per_camera=2)
    retention = await asyncio.to_thread(start_retention, storage, cfg(max_storage_gb=gb(4 * SIZE)))
    assert (await retention.async_enforce(0.0)).files_deleted == len(clips) - 4
    assert (await retention.async_cleanup(gb(SIZE))).files_deleted == 3


# Emergency, on a real small file system


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs, unmounted afterwards; fails (never skips) if it cannot be mounted."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"Cannot mount an 8 MB tmpfs for the emergency test (needs root or CAP_SYS_ADMIN): "
            f"{proc.stderr.strip()}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_auto_floor() -> None:
    config = RetentionConfig(max_storage_gb=10)
    assert config.free_floor_bytes(0) == BYTES_PER_GB
    assert config.free_floor_bytes(4_000_000) == BYTES_PER_GB  # 300 MB in 10 minutes
    assert config.free_floor_bytes(40_000_000) == 3_000_000_000
    assert config.free_floor_bytes(0, 32 * BYTES_PER_GB) == BYTES_PER_GB  # 2 %: 655 MB
    assert config.free_floor_bytes(0, 1000 * BYTES_PER_GB) == 20 * BYTES_PER_GB
    assert config.free_floor_bytes(40_000_000, 100 * BYTES_PER_GB) == 3_000_000_000
    assert RetentionConfig(max_storage_gb=10, min_free_gb=0.5).free_floor_bytes(
        1e9, 1000 * BYTES_PER_GB
    ) == (BYTES_PER_GB // 2)


def test_emergency_prunes_recordings_spares_events_and_reports(small_fs: Path) -> None:
    storage = small_fs
    big = 256 * 1024
    clips = make_clips(storage, per_camera=6, size=big)  # 18 clips, 4.5 MB
    make_event(storage, "kept", clips[:2], keep=True)  # oldest two are event footage
    floor = 4 * 1024 * 1024
    config = RetentionConfig(max_storage_gb=gb(10**10), min_free_gb=gb(floor))
    retention = start_retention(storage, config)
    free = retention.usage().free_bytes
    assert free is not None
    assert free < floor
    assert retention.over_quota()

    result = retention.enforce()

    assert result.emergency
    assert not result.low_space_unresolved
    free_after = retention.usage().free_bytes
    assert free_after is not None
    assert free_after >= floor
    gone = [c for c in clips if not c.exists()]
    assert gone == clips[2 : 2 + len(gone)]  # oldest recordings only, never the shared ones
    assert result.bytes_freed == len(gone) * big
    assert clips[0].exists()
    assert clips[1].exists()
    assert len(list((storage / "events" / "kept").rglob("*.mp4"))) == 2
    assert free_after - big < floor  # no more than needed
    assert_accounting_matches_disk(retention, storage)

    # Events alone now fill the disk: recordings go, events stay, the problem is reported.
    filler = storage / "events" / "kept" / "front" / "extra.bin"
    filler.write_bytes(b"\0" * (free_after - 64 * 1024))
    retention.refresh_event("kept")
    result = retention.enforce(bitrate_bps=0.0)
    assert result.emergency
    assert result.low_space_unresolved
    assert filler.exists()
    assert remaining(storage) == set(clips[:2])  # only the event-linked clips are left
    assert retention.usage().low_space
    assert retention.enforce().low_space_unresolved  # still unresolved, no crash

    # The user deletes the event footage: the flag clears on the next run.
    shutil.rmtree(storage / "events" / "kept")
    retention.event_removed("kept")
    result = retention.enforce()
    assert not result.emergency
    assert not result.low_space_unresolved
    assert not retention.usage().low_space


def test_auto_floor_on_a_small_disk_empties_recordings_then_unkept_events(
    small_fs: Path,
) -> None:
    storage = small_fs
    clips = make_clips(storage, per_camera=2, size=64 * 1024)
    make_event(storage, "ev", clips[:1])
    make_event(storage, "kept", clips[1:2], keep=True)
    retention = start_retention(storage, RetentionConfig(max_storage_gb=gb(10**10)))
    result = retention.enforce(bitrate_bps=1_000_000)  # floor: 1 GB on an 8 MB disk
    assert result.emergency
    assert result.low_space_unresolved
    assert result.emergency_events == ("ev",)
    assert remaining(storage) == {clips[1]}
    assert not (storage / "events" / "ev").exists()
    assert (storage / "events" / "kept" / "event.json").exists()
    assert_accounting_matches_disk(retention, storage)


def fill_to(storage: Path, name: str, free: int) -> Path:
    """A file taking the space so that `free` bytes are left (pages of 4 KiB on tmpfs)."""
    st = os.statvfs(storage)
    filler = storage / name
    filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - free))
    return filler


def count(caplog: pytest.LogCaptureFixture, text: str, level: str = "WARNING") -> int:
    return sum(1 for r in caplog.records if r.levelname == level and text in r.getMessage())


def test_emergency_deletes_the_oldest_unkept_events_after_recordings(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Under the floor with every recording no event holds gone, the oldest events neither kept
    nor recording go, one by one, each logged once by id; low space is logged when it starts,
    turns unresolved and ends, not on every run."""
    caplog.set_level("INFO", logger="custom_components.pm_dvr.core.retention")
    storage = small_fs
    k = 1024
    clips = make_clips(storage, per_camera=4, size=128 * k)  # 12 clips, 1.5 MB
    events = {
        "kept": make_event(storage, "kept", clips[0:2], keep=True, completed=BASE),
        "old": make_event(storage, "old", clips[2:4], completed=BASE + 10),
        "new": make_event(storage, "new", clips[4:6], completed=BASE + 20),
        "live": make_event(storage, "live", clips[6:7], state="recording", completed=None),
    }
    # Recordings no event holds: clips[7:], 640 KiB. With them gone, 64 KiB are still missing.
    floor = 1024 * k
    fill_to(storage, "filler-1", floor - 640 * k - 64 * k)
    retention = start_retention(storage, RetentionConfig(gb(10**10), min_free_gb=gb(floor)))

    result = retention.enforce()
    assert result.emergency
    assert result.low_space
    assert not result.low_space_unresolved
    assert result.emergency_events == ("old",)
    assert result.events_deleted == 1
    assert not events["old"].exists()
    assert all(events[e].is_dir() for e in ("kept", "new", "live"))
    assert all(not c.exists() for c in clips[7:])  # recordings first
    assert not clips[2].exists()  # the old event's clips became recordings no event holds
    assert all(c.exists() for c in clips[4:7])
    free = retention.usage().free_bytes
    assert free is not None
    assert floor <= free < floor * 1.25
    assert_accounting_matches_disk(retention, storage)
    assert count(caplog, "Deleted event old") == 1
    assert count(caplog, "is under the floor") == 1

    # Held just above the floor: nothing more goes, nothing more is logged.
    for _ in range(3):
        result = retention.enforce()
        assert not result.emergency
        assert result.low_space  # not a quarter of the floor above it yet
        assert result.emergency_events == ()

    # Something else fills the disk: the rest of the recordings and the newer event go, the
    # kept and the recording ones stay; unresolved, logged once over several runs.
    fill_to(storage, "filler-2", 64 * k)
    for _ in range(4):
        result = retention.enforce()
        assert result.emergency
        assert result.low_space_unresolved
    assert not events["new"].exists()
    assert events["kept"].is_dir()
    assert events["live"].is_dir()
    assert remaining(storage) == set(clips[0:2]) | {clips[6]}
    assert_accounting_matches_disk(retention, storage)
    assert count(caplog, "Deleted event new") == 1
    assert count(caplog, "Deleted event") == 2
    assert count(caplog, "is under the floor") == 1
    assert count(caplog, "is still under the floor") == 1

    # Space is back: said once; coming under the floor again is logged again.
    (storage / "filler-1").unlink()
    (storage / "filler-2").unlink()
    for _ in range(3):
        result = retention.enforce()
        assert not result.emergency
        assert not result.low_space
        assert not result.low_space_unresolved
    assert count(caplog, "is back above the floor", "INFO") == 1
    fill_to(storage, "filler-3", 64 * k)
    for _ in range(2):
        assert retention.enforce().emergency
    assert count(caplog, "is under the floor") == 2
    assert count(caplog, "is still under the floor") == 2
    assert count(caplog, "Deleted event") == 2  # the kept and the recording event never go
    assert events["kept"].is_dir()
    assert events["live"].is_dir()


def test_lasting_problems_are_logged_once_and_on_change(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Files that cannot be deleted, an event quota only kept events exceed and a storage folder
    that cannot be opened: each logged when it starts and when it changes, over many runs."""
    caplog.set_level("INFO", logger="custom_components.pm_dvr.core.retention")
    clips = make_clips(storage, per_camera=4)
    make_event(storage, "kept", clips[:2], keep=True)
    retention = start_retention(
        storage, cfg(max_storage_gb=gb(6 * SIZE), max_event_storage_gb=gb(SIZE))
    )
    real_unlink = os.unlink
    error = PermissionError(13, "denied")

    def failing_unlink(path: str, *, dir_fd: int | None = None) -> None:
        if path == clips[2].name:
            raise error
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", failing_unlink)
    for i in range(4):
        clip = clip_from_path("front", write_clip(storage, "front", BASE + 86400 + i * 60))
        assert clip is not None
        retention.index.add(clip)  # as a recorder adds it
        retention.enforce()
    assert clips[2].exists()
    assert count(caplog, "cannot delete files: denied") == 1
    assert count(caplog, "over their quota") == 1
    error = PermissionError(1, "not permitted")  # another failure: said once more
    for _ in range(2):
        retention.cleanup(gb(SIZE))
    assert count(caplog, "cannot delete files: not permitted") == 1
    monkeypatch.undo()
    retention.cleanup(0)
    assert not clips[2].exists()
    assert count(caplog, "Retention deletes files again", "INFO") == 1

    gone = start_retention(tmp_path / "gone", cfg(1))
    for _ in range(3):
        gone.enforce()
    assert count(caplog, "Retention cannot open") == 1
    (tmp_path / "gone").mkdir()
    gone.enforce()
    assert count(caplog, "can open", "INFO") == 1
