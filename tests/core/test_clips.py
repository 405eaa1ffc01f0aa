"""The clip index and the storage layout: names, scans, lookups by time, listeners."""

from __future__ import annotations

import os
from pathlib import Path
import time

import pytest

from custom_components.pm_dvr.core.clips import (
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
    recordings_dir,
    slugify,
)

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
