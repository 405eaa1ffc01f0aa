"""Events on real files: a fake recorder thread closes small clips into a real ClipIndex."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
import errno
import json
import logging
import math
import os
from pathlib import Path
import re
import threading
import time
from typing import Any

import pytest

from custom_components.pm_dvr.core import capture as capture_mod
from custom_components.pm_dvr.core.capture import CaptureManager, EventInfo
from custom_components.pm_dvr.core.clips import Clip, ClipIndex
from custom_components.pm_dvr.core.errors import (
    CaptureError,
    EventNotFoundError,
    InvalidTriggerError,
    InvalidWindowError,
    LabelTooLongError,
    PmDvrError,
    StorageError,
    UnknownCameraError,
)
from custom_components.pm_dvr.core.event import (
    STATE_COMPLETE,
    STATE_RECORDING,
    EventRecord,
    iso_time,
)
from custom_components.pm_dvr.core.layout import EVENT_FILE, clip_name, events_dir, recordings_dir

SEG = 0.4  # seconds per clip in these tests
ID_RE = re.compile(r"^\d{8}-\d{6}-\d{3}_[a-z0-9-]+$")


class FakeRecorder:
    """Writes clips like the recorder (.part, then rename) and adds them to the index."""

    def __init__(self, storage: Path, index: ClipIndex, cameras: list[str]) -> None:
        self.storage = storage
        self.index = index
        self.cameras = cameras
        self.offline: set[str] = set()
        self._ends: dict[str, float] = {}
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread: threading.Thread | None = None
        self._n = 0

    def write(self, camera: str, start: float, end: float) -> Clip:
        """One closed clip with real bytes, added to the index (listeners run in this thread)."""
        self._n += 1
        day = time.strftime("%Y-%m-%d", time.localtime(start))
        folder = recordings_dir(self.storage) / camera / day
        folder.mkdir(parents=True, exist_ok=True)
        name = clip_name(start)[:-4] + f"-{int(start % 1 * 1000):03d}.mp4"
        part = folder / (name + ".part")
        part.write_bytes(os.urandom(500 + 37 * (self._n % 50)))
        path = folder / name
        part.rename(path)
        st = path.stat()
        clip = Clip(start, end, camera, path, st.st_size, st.st_ino)
        self.index.add(clip)
        self._ends[camera] = end
        return clip

    def history(self, seconds: float) -> None:
        """Clips that closed before the test starts, ending now."""
        now = time.time()
        for camera in self.cameras:
            t = now - seconds
            while t + SEG <= now + 1e-6:
                self.write(camera, t, t + SEG)
                t += SEG

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        now = time.time()
        for camera in self.cameras:
            self._ends.setdefault(camera, now)
        while not self._stop.wait(SEG):
            self._running.wait()
            now = time.time()
            for camera in self.cameras:
                if camera in self.offline:
                    self._ends[camera] = now
                    continue
                self.write(camera, self._ends[camera], now)

    def pause(self) -> None:
        """Hold the clip being recorded open (it closes, longer, on resume)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        if self._thread is not None:
            self._thread.join()


class Env:
    """A storage with an index, a recorder and helpers to build managers."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.index = ClipIndex(recordings_dir(storage))
        self.recorder = FakeRecorder(storage, self.index, ["cam1", "cam2"])
        self.infos: list[EventInfo] = []
        self.saved: list[dict[str, Any]] = []
        self.managers: list[CaptureManager] = []

    async def save(self, state: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.saved.append(json.loads(json.dumps(state)))

    def manager(self, **kwargs: Any) -> CaptureManager:
        kwargs.setdefault("save_state", self.save)
        kwargs.setdefault("on_event", self.infos.append)
        kwargs.setdefault("grace_seconds", 1.0)
        kwargs.setdefault("cameras", lambda: ["cam1", "cam2", "cam3"])
        manager = CaptureManager(self.storage, self.index, **kwargs)
        self.managers.append(manager)
        return manager

    def completed(self, event_id: str) -> EventInfo | None:
        for info in self.infos:
            if info.event_id == event_id and info.state == STATE_COMPLETE:
                return info
        return None

    async def wait_complete(self, event_id: str, timeout: float = 6.0) -> EventInfo:
        await wait_until(lambda: self.completed(event_id) is not None, timeout)
        info = self.completed(event_id)
        assert info is not None
        return info


async def wait_until(predicate: Callable[[], bool], timeout: float = 6.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def footage_passes(index: ClipIndex, camera: str, seconds: float) -> None:
    """Wait until `camera` has recorded `seconds` more: a clip ending that much after now."""
    until = time.time() + seconds
    await wait_until(lambda: any(c.end >= until for c in index.clips(camera)))


def read_event(info: EventInfo) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((info.path / EVENT_FILE).read_text())
    return doc


def linked(info: EventInfo, camera: str) -> dict[str, os.stat_result]:
    folder = info.path / camera
    if not folder.is_dir():
        return {}
    return {p.name: p.stat() for p in folder.iterdir()}


def expected(index: ClipIndex, camera: str, t0: float, t1: float) -> dict[str, Clip]:
    return {c.path.name: c for c in index.clips(camera) if c.end >= t0 and c.start <= t1}


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    environment = Env(tmp_path / "storage")
    yield environment
    environment.recorder.stop()


@pytest.fixture(autouse=True)
async def stop_managers(env: Env) -> AsyncIterator[None]:
    yield
    for manager in env.managers:
        await manager.stop()


async def test_capture_links_preroll_then_open_clip_and_completes(env: Env) -> None:
    env.recorder.history(3.0)
    env.recorder.start()
    manager = env.manager()
    await manager.start()
    before = env.index.clips("cam1")

    info = await manager.capture(["cam1"], 1.0, 0.8, "Front door", "service")

    # Returned: pre-roll already linked and a first event.json written.
    assert ID_RE.match(info.event_id)
    assert info.event_id.endswith("_front-door")
    assert info.path == events_dir(env.storage) / info.event_id
    assert info.state == STATE_RECORDING
    pre = {c.path.name: c for c in before if c.end >= info.start}
    assert len(pre) >= 2
    now_linked = linked(info, "cam1")
    for name, clip in pre.items():
        assert now_linked[name].st_ino == clip.inode
    first = read_event(info)
    assert first["state"] == "recording"
    assert first["completed"] is None
    assert [a.state for a in env.infos] == [STATE_RECORDING]
    assert [a.event_id for a in manager.active_events()] == [info.event_id]
    assert info.end is not None

    done = await env.wait_complete(info.event_id)
    assert done.offline == ()
    want = expected(env.index, "cam1", info.start, info.end)
    got = linked(info, "cam1")
    assert set(got) == set(want)
    assert any(c.start > time.time() - 10 and c not in before for c in want.values())
    for name, clip in want.items():
        assert got[name].st_ino == clip.inode == Path(clip.path).stat().st_ino
        assert got[name].st_size == clip.size

    doc = read_event(info)
    assert doc["id"] == info.event_id
    assert doc["label"] == "Front door"
    assert doc["trigger"] == "service"
    assert doc["cameras"] == ["cam1"]
    assert doc["state"] == "complete"
    assert doc["keep"] is False
    assert doc["version"] == 1
    assert doc["errors"] == []
    assert doc["offline"] == []
    assert abs(ts(doc["requested"]["start"]) - info.start) < 0.002
    assert abs(ts(doc["requested"]["end"]) - info.end) < 0.002
    assert ts(doc["actual"]["start"]) <= info.start
    assert ts(doc["actual"]["end"]) >= info.end - 0.001  # event.json keeps milliseconds
    assert [(c["name"], c["size"]) for c in doc["clips"]["cam1"]] == [
        (c.path.name, c.size) for c in sorted(want.values())
    ]
    assert all(abs(ts(c["start"]) - want[c["name"]].start) < 0.002 for c in doc["clips"]["cam1"])
    assert datetime.fromisoformat(doc["created"]).utcoffset() is not None
    completed = ts(doc["completed"])
    # The clip holding the window end closes at most one clip length after it.
    assert info.end <= completed <= info.end + SEG + 0.3
    assert [a.state for a in env.infos] == [STATE_RECORDING, STATE_COMPLETE]
    assert manager.active_events() == []
    last = manager.last_event("cam1")
    assert last is not None
    assert last.state == STATE_COMPLETE
    assert manager.last_event("cam2") is None
    assert not list(info.path.glob(".*tmp"))
    await wait_until(lambda: env.saved[-1]["events"] == {})


async def test_overlapping_captures_share_inodes(env: Env) -> None:
    env.recorder.history(2.0)
    env.recorder.start()
    manager = env.manager()
    await manager.start()
    first = await manager.capture(["cam1", "cam2"], 1.0, 0.5, None, "automation")
    await footage_passes(env.index, "cam1", 0.3)
    second = await manager.capture(["cam1"], 1.0, 0.5, None, "mqtt")
    assert first.event_id != second.event_id
    assert first.label == "automation"
    await env.wait_complete(first.event_id)
    await env.wait_complete(second.event_id)
    a, b = linked(first, "cam1"), linked(second, "cam1")
    shared = set(a) & set(b)
    assert len(shared) >= 2
    for name in shared:
        assert a[name].st_ino == b[name].st_ino
        assert a[name].st_nlink >= 3
    assert set(linked(first, "cam2")) == set(
        expected(env.index, "cam2", first.start, first.end or math.inf)
    )


@pytest.mark.parametrize("label", ["../../etc", "..", ".", "/etc/passwd", "a/../../b", "\x00../x"])
async def test_labels_cannot_escape_events_folder(env: Env, label: str) -> None:
    env.recorder.history(1.0)
    manager = env.manager()
    await manager.start()
    info = await manager.capture(["cam1"], 1.0, 0.0, label, "service")
    root = events_dir(env.storage).resolve()
    assert info.path.resolve().parent == root
    assert (info.path / EVENT_FILE).is_file()
    for path in env.storage.parent.rglob("*"):
        assert path.resolve().is_relative_to(env.storage.resolve())
    doc = read_event(info)
    assert "/" not in info.event_id
    assert doc["label"] == ("".join(ch for ch in label if ch.isprintable()).strip())


async def test_offline_camera_completes_after_grace(env: Env) -> None:
    env.recorder.history(2.0)
    env.recorder.offline.add("cam2")
    env.recorder.start()
    manager = env.manager(grace_seconds=0.6)
    await manager.start()
    info = await manager.capture(["cam1", "cam2", "cam3"], 0.6, 0.4, "offline", "service")
    assert info.end is not None
    done = await env.wait_complete(info.event_id)
    assert time.time() >= info.end + 0.6
    assert done.offline == ("cam2", "cam3")
    doc = read_event(info)
    assert doc["offline"] == ["cam2", "cam3"]
    assert doc["clips"]["cam3"] == []
    assert doc["clips"]["cam2"]  # pre-roll was on disk before it went offline
    assert set(linked(info, "cam1")) == set(expected(env.index, "cam1", info.start, info.end))


async def test_preroll_gap_is_reported_offline(env: Env) -> None:
    env.recorder.history(0.8)
    env.recorder.start()
    manager = env.manager()
    await manager.start()
    info = await manager.capture(["cam1"], 5.0, 0.0, "gap", "service")
    done = await env.wait_complete(info.event_id)
    assert done.offline == ("cam1",)


async def test_persistent_survives_restart(env: Env) -> None:
    env.recorder.history(2.0)
    env.recorder.start()
    first = env.manager()
    await first.start()
    info = await first.start_persistent(["cam1"], "watch", 0.5)
    assert info.persistent
    assert info.end is None
    assert first.is_persistent("cam1")
    assert not first.is_persistent("cam2")
    assert first.persistent_cameras() == ["cam1"]
    again = await first.start_persistent(["cam1"], "other")
    assert again.event_id == info.event_id
    assert read_event(info)["requested"]["end"] is None
    await footage_passes(env.index, "cam1", 1.0)
    await first.stop()
    state = env.saved[-1]
    assert state["persistent"] == {"cam1": info.event_id}
    assert state["events"][info.event_id]["ends"] == {"cam1": None}
    down_from = time.time()
    # Clips close while nobody listens: wait for one, then note when listening resumes.
    await wait_until(lambda: any(c.end > down_from for c in env.index.clips("cam1")))
    up_from = time.time()

    second = env.manager()
    await second.start(json.loads(json.dumps(state)))
    assert second.is_persistent("cam1")
    assert (await second.start_persistent(["cam1"])).event_id == info.event_id
    await footage_passes(env.index, "cam1", 0.6)
    stopped = await second.stop_persistent(["cam1", "cam2"], post_seconds=0.4)
    assert [s.event_id for s in stopped] == [info.event_id]
    assert not second.is_persistent("cam1")
    done = await env.wait_complete(info.event_id)
    assert done.end is not None
    want = expected(env.index, "cam1", info.start, done.end)
    got = linked(info, "cam1")
    assert set(got) == set(want)
    assert any(down_from < c.end < up_from for c in want.values())
    assert all(got[n].st_ino == c.inode for n, c in want.items())
    doc = read_event(info)
    assert doc["state"] == "complete"
    assert doc["trigger"] == "persistent"
    assert doc["offline"] == []
    assert len(doc["clips"]["cam1"]) == len(want)
    assert [i.state for i in env.infos if i.event_id == info.event_id] == [
        STATE_RECORDING,
        STATE_COMPLETE,
    ]
    await wait_until(lambda: env.saved[-1] == {"version": 1, "events": {}, "persistent": {}})


async def test_event_in_progress_resumes_after_restart(env: Env) -> None:
    env.recorder.history(2.0)
    env.recorder.start()
    first = env.manager()
    await first.start()
    info = await first.capture(["cam1", "cam2"], 0.8, 0.6, "door", "service")
    await first.stop()
    state = env.saved[-1]
    assert list(state["events"]) == [info.event_id]
    assert read_event(info)["state"] == "recording"
    assert info.end is not None
    await wait_until(lambda: time.time() > info.end + SEG + 0.1)  # type: ignore[operator]

    second = env.manager()
    await second.start(state)
    done = await env.wait_complete(info.event_id, timeout=2.0)
    assert done.offline == ()
    for camera in ("cam1", "cam2"):
        want = expected(env.index, camera, info.start, info.end)
        assert set(linked(info, camera)) == set(want)
    doc = read_event(info)
    assert doc["state"] == "complete"
    assert len(doc["clips"]["cam1"]) == len(expected(env.index, "cam1", info.start, info.end))


async def test_resume_drops_unreadable_or_vanished_events(env: Env) -> None:
    env.recorder.history(1.0)
    manager = env.manager()
    state = {
        "version": 1,
        "events": {
            "../../etc": {"label": "x", "trigger": "service", "start": 1, "created": 1, "ends": {}},
            "20260101-000000-000_gone": {
                "label": "gone",
                "trigger": "service",
                "start": 1.0,
                "created": 1.0,
                "ends": {"cam1": 2.0},
            },
            "20260101-000000-001_bad": {"label": "x", "trigger": "nope"},
            "20260101-000000-002_bad": {
                "label": "x",
                "trigger": "service",
                "start": 1.0,
                "created": 1.0,
                "ends": {"../x": 2.0},
            },
            "20260101-000000-003_bad": {
                "label": "x",
                "trigger": "service",
                "start": 1.0,
                "created": 1.0,
                "ends": {"cam1": "soon"},
            },
            "20260101-000000-004_bad": [],
        },
    }
    await manager.start(state)
    assert manager.active_events() == []
    assert not events_dir(env.storage).exists()


async def test_resume_with_old_window_completes_immediately_from_event_json(env: Env) -> None:
    env.recorder.history(3.0)
    clips = env.index.clips("cam1")
    t0, t1 = clips[1].start + 0.1, clips[3].start + 0.1
    event_id = "20260101-000000-000_old"
    folder = events_dir(env.storage) / event_id / "cam1"
    folder.mkdir(parents=True)
    os.link(clips[1].path, folder / clips[1].path.name)
    os.link(clips[3].path, folder / clips[3].path.name)
    prior = {
        "clips": {
            "cam1": [
                {
                    "name": clips[1].path.name,
                    "size": clips[1].size,
                    "start": iso_time(clips[1].start),
                    "end": iso_time(clips[1].end),
                },
                {
                    "name": clips[3].path.name,
                    "size": clips[3].size,
                    "start": iso_time(clips[3].start),
                    "end": iso_time(clips[3].end),
                },
                {"name": 5},
                {"name": "x.mp4", "size": "big", "start": "never", "end": None},
            ]
        },
        "errors": ["earlier problem"],
        "keep": True,
        "rating": 5,  # a newer pm_dvr's field: kept on every rewrite
    }
    (folder.parent / EVENT_FILE).write_text(json.dumps(prior))
    manager = env.manager()
    state = {
        "events": {
            event_id: {
                "label": "old",
                "trigger": "motion",
                "start": t0,
                "created": t0,
                "ends": {"cam1": t1},
            }
        }
    }
    await manager.start(state)
    await wait_until(lambda: env.completed(event_id) is not None, 2.0)
    doc = json.loads((folder.parent / EVENT_FILE).read_text())
    assert doc["state"] == "complete"
    assert doc["errors"] == ["earlier problem"]
    assert doc["keep"] is True
    assert [c["name"] for c in doc["clips"]["cam1"]] == [c.path.name for c in clips[1:4]]
    assert doc["offline"] == []
    assert doc["rating"] == 5


async def test_copy_fallback_when_hard_links_fail(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.recorder.history(3.0)

    def no_link(src: Any, dst: Any, **_: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    manager = env.manager()
    await manager.start()
    with caplog.at_level(logging.WARNING, logger=capture_mod.__name__):
        info = await manager.capture(["cam1", "cam2"], 2.0, 0.0, "copy", "service")
    want = expected(env.index, "cam1", info.start, time.time())
    got = linked(info, "cam1")
    assert len(want) >= 4
    assert set(got) == set(want)
    for name, clip in want.items():
        assert got[name].st_ino != clip.inode
        assert (info.path / "cam1" / name).read_bytes() == clip.path.read_bytes()
    assert not list(info.path.rglob("*.part"))
    warnings = [r for r in caplog.records if "Hard links are not possible" in r.getMessage()]
    assert len(warnings) == 1


async def test_link_errors_are_recorded_without_paths(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.recorder.history(2.0)
    clips = env.index.clips("cam1")
    clips[-1].path.unlink()
    real_link = os.link

    def flaky(src: Any, dst: Any, **kw: Any) -> None:
        if Path(src) == clips[-2].path:
            raise OSError(errno.EIO, "Input/output error")
        real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", flaky)
    manager = env.manager()
    await manager.start()
    info = await manager.capture(["cam1"], 1.0, 0.0, None, "service")
    doc = read_event(info)
    assert f"cam1/{clips[-1].path.name}: clip missing" in doc["errors"]
    assert f"cam1/{clips[-2].path.name}: Input/output error" in doc["errors"]
    assert not any(str(env.storage) in e for e in doc["errors"])


async def test_motion_opens_then_extends(env: Env) -> None:
    env.recorder.history(1.0)
    env.recorder.start()
    # No clip closes (and no grace runs out) until the second motion: the first event is still
    # in progress then, however late a loaded machine gets there.
    env.recorder.pause()
    manager = env.manager(grace_seconds=5.0)
    await manager.start()
    first = await manager.motion("cam1", 0.4, 0.5)
    assert first.trigger == "motion"
    assert first.label == "motion"
    await asyncio.sleep(0.3)
    moved_at = time.time()
    second = await manager.motion("cam1", 0.4, 0.5)
    env.recorder.resume()
    assert second.event_id == first.event_id
    assert second.end is not None
    assert first.end is not None
    assert second.end >= moved_at + 0.5 > first.end
    done = await env.wait_complete(first.event_id)
    assert done.end == second.end
    assert set(linked(first, "cam1")) == set(expected(env.index, "cam1", first.start, second.end))
    third = await manager.motion("cam1", 0.4, 0.5)
    assert third.event_id != first.event_id


async def test_extend_reopens_a_camera_that_was_done(env: Env) -> None:
    env.recorder.history(2.0)
    env.recorder.offline.add("cam2")
    env.recorder.start()
    manager = env.manager(grace_seconds=1.5)
    await manager.start()
    info = await manager.capture(["cam1", "cam2"], 0.5, 0.1, "multi", "automation")
    assert info.end is not None
    end = info.end
    # cam1 covers its window quickly (a clip past the end is linked), cam2 keeps the event open.
    await wait_until(
        lambda: any(
            c.end >= end and c.path.name in linked(info, "cam1") for c in env.index.clips("cam1")
        )
    )
    assert manager.active_events()
    extended = manager.extend(info.event_id, time.time() + 0.2)
    assert extended.end is not None
    assert extended.end > info.end
    assert manager.extend(info.event_id, 0).end == extended.end  # never earlier
    done = await env.wait_complete(info.event_id)
    assert done.offline == ("cam2",)
    assert set(linked(info, "cam1")) == set(expected(env.index, "cam1", info.start, extended.end))
    with pytest.raises(EventNotFoundError):
        manager.extend(info.event_id, time.time() + 5)


async def test_validation_errors(env: Env) -> None:
    manager = env.manager()
    with pytest.raises(CaptureError):
        await manager.capture(["cam1"], 1, 1, None, "service")
    await manager.start()
    for bad in (-1, 3600.5, math.nan, math.inf, True, "5", None):
        with pytest.raises(InvalidWindowError) as err:
            await manager.capture(["cam1"], bad, 1, None, "service")  # type: ignore[arg-type]
        assert err.value.translation_key == "invalid_window"
        with pytest.raises(InvalidWindowError):
            await manager.capture(["cam1"], 1, bad, None, "service")  # type: ignore[arg-type]
    with pytest.raises(LabelTooLongError) as too_long:
        await manager.capture(["cam1"], 1, 1, "x" * 65, "service")
    assert too_long.value.translation_key == "label_too_long"
    with pytest.raises(CaptureError):
        await manager.capture(["cam1"], 1, 1, 5, "service")  # type: ignore[arg-type]
    for cameras in (["nope"], ["../cam1"], [], [""], [7]):
        with pytest.raises(UnknownCameraError) as unknown:
            await manager.capture(cameras, 1, 1, None, "service")  # type: ignore[arg-type]
        assert unknown.value.translation_key == "unknown_camera"
    with pytest.raises(InvalidTriggerError) as trigger:
        await manager.capture(["cam1"], 1, 1, None, "bogus")
    assert trigger.value.translation_key == "invalid_trigger"
    with pytest.raises(EventNotFoundError) as missing:
        manager.extend("20260101-000000-000_x", time.time())
    assert missing.value.translation_key == "event_not_found"
    with pytest.raises(InvalidWindowError):
        await manager.start_persistent(["cam1"], None, 4000)
    with pytest.raises(InvalidWindowError):
        await manager.stop_persistent(["cam1"], -2)
    assert await manager.stop_persistent(["cam1"]) == []
    assert manager.active_events() == []
    # 64 characters is fine; a single camera may be given as a string.
    ok = await manager.capture("cam1", 0, 0, "y" * 64, "service")
    assert ok.label == "y" * 64
    info = await manager.capture(["cam1"], 0, 5, None, "service")
    with pytest.raises(InvalidWindowError):
        manager.extend(info.event_id, math.nan)
    assert all(issubclass(e, PmDvrError) for e in (CaptureError, StorageError))


async def test_ids_get_a_counter_on_collision(env: Env) -> None:
    env.recorder.history(1.0)
    fixed = time.time()
    manager = env.manager(now=lambda: fixed)
    await manager.start()
    a = await manager.capture(["cam1"], 0, 0, "same", "service")
    b = await manager.capture(["cam1"], 0, 0, "same", "service")
    assert ID_RE.match(a.event_id)
    assert ID_RE.match(b.event_id)
    assert a.event_id != b.event_id
    assert b.event_id == a.event_id + "-2"
    await manager.stop()
    # A fresh manager (same millisecond after a clock step back) must not reuse a folder.
    again = env.manager(now=lambda: fixed)
    await again.start()
    c = await again.capture(["cam1"], 0, 0, "same", "service")
    assert c.event_id not in {a.event_id, b.event_id}
    assert c.event_id == a.event_id + "-3"
    assert sorted([c.event_id, b.event_id, a.event_id]) == [a.event_id, b.event_id, c.event_id]
    assert (c.path / EVENT_FILE).is_file()


async def test_storage_that_cannot_hold_events(env: Env) -> None:
    env.storage.mkdir(parents=True)
    events_dir(env.storage).write_text("not a folder")
    manager = env.manager()
    await manager.start()
    with pytest.raises(StorageError):
        await manager.capture(["cam1"], 1, 1, None, "service")
    assert manager.active_events() == []
    assert manager.last_event("cam1") is None


async def test_stop_leaves_no_tasks_and_sync_callbacks_may_fail(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.recorder.history(1.0)
    saved: list[dict[str, Any]] = []

    def save(state: dict[str, Any]) -> None:
        saved.append(state)

    def boom(info: EventInfo) -> None:
        raise RuntimeError("glue failed")

    manager = env.manager(save_state=save, on_event=boom)
    await manager.start()
    await manager.start()  # idempotent
    info = await manager.capture(["cam1", "cam2"], 1, 30, None, "service")
    assert "on_event callback failed" in caplog.text
    await manager.stop()
    await manager.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert list(saved[-1]["events"]) == [info.event_id]
    env.recorder.write("cam1", time.time(), time.time() + 0.1)  # after stop: ignored
    await asyncio.sleep(0.05)
    assert read_event(info)["state"] == "recording"

    def broken(state: dict[str, Any]) -> None:
        raise OSError("disk full")

    other = env.manager(save_state=broken, on_event=None)
    await other.start(saved[-1])
    await other.stop()
    assert "Saving the event state failed" in caplog.text


async def test_event_json_write_failure_is_recorded(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.recorder.history(1.0)
    manager = env.manager()
    await manager.start()
    real = capture_mod.write_event
    calls = 0

    def failing_once(folder: Path, record: EventRecord, *, durable: bool) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(folder, record, durable=durable)

    monkeypatch.setattr(capture_mod, "write_event", failing_once)
    info = await manager.capture(["cam1"], 1, 30, None, "service")
    assert not (info.path / EVENT_FILE).exists()
    manager.extend(info.event_id, time.time() + 40)
    await wait_until((info.path / EVENT_FILE).exists, 2.0)
    assert "cannot write event.json: No space left on device" in read_event(info)["errors"]


def test_event_info_as_dict_is_json() -> None:
    info = EventInfo("id", "label", "mqtt", ("cam1",), "complete", Path("/x"), 0.0, None, True)
    data = json.loads(json.dumps(info.as_dict()))
    assert data["end"] is None
    assert data["cameras"] == ["cam1"]
    assert data["path"] == "/x"
    assert datetime.fromisoformat(data["start"]).timestamp() == 0.0


def test_gap_detection() -> None:
    def clip(start: float, end: float) -> Any:
        return capture_mod._Linked("x", 1, start, end)

    has_gap = capture_mod._has_gap
    assert not has_gap([clip(0, 5), clip(5.5, 10)], 1, 9, 1.0)
    assert has_gap([clip(0, 5), clip(7, 10)], 1, 9, 1.0)  # hole in the middle
    assert has_gap([clip(2.5, 10)], 1, 9, 1.0)  # starts late
    assert has_gap([clip(0, 5)], 1, 9, 1.0)  # stops early
    assert has_gap([], 1, 9, 1.0)
    assert not has_gap([clip(0, 8.5)], 1, 9, 1.0)


async def test_planted_symlink_cannot_redirect_an_event(env: Env, tmp_path: Path) -> None:
    env.recorder.history(1.0)
    outside = tmp_path / "outside"
    outside.mkdir()
    fixed = time.time()
    manager = env.manager(now=lambda: fixed)
    await manager.start()
    first = await manager.capture(["cam1"], 0, 0, "trap", "service")
    # Someone plants a link where the next clashing id would go.
    (first.path.parent / (first.event_id + "-2")).symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError):
        await manager.capture(["cam1"], 0, 0, "trap", "service")
    assert list(outside.iterdir()) == []


async def test_stale_and_late_clips_are_ignored(env: Env) -> None:
    env.recorder.history(2.0)
    manager = env.manager(save_state=None, on_event=None, grace_seconds=5.0)
    await manager.start()
    info = await manager.capture(["cam1"], 0.5, 0.0, None, "service")
    assert info.end is not None
    before = set(linked(info, "cam1"))
    old = env.recorder.write("cam1", info.start - 10, info.start - 9)  # closed long before
    late = env.recorder.write("cam1", info.end + 0.5, info.end + 0.9)  # starts past the end
    await wait_until(lambda: read_event(info)["state"] == "complete", 2.0)
    assert not manager.active_events()
    after = set(linked(info, "cam1"))
    assert after == before
    assert old.path.name not in after
    assert late.path.name not in after
    await manager.stop()
    manager._listener(late)  # a recorder racing the shutdown
    manager._on_clip(late)
    assert set(linked(info, "cam1")) == before


async def test_resume_takes_links_already_on_disk(env: Env) -> None:
    env.recorder.history(3.0)
    clips = env.index.clips("cam1")
    event_id = "20260101-000000-000_partial"
    folder = events_dir(env.storage) / event_id / "cam1"
    folder.mkdir(parents=True)
    os.link(clips[2].path, folder / clips[2].path.name)  # linked, event.json not yet rewritten
    (folder.parent / EVENT_FILE).write_text(json.dumps({"clips": [], "errors": "none"}))
    manager = env.manager()
    state = {
        "events": {
            event_id: {
                "label": "partial",
                "trigger": "service",
                "start": clips[1].start + 0.1,
                "created": clips[1].start,
                "ends": {"cam1": clips[2].end - 0.1},
            }
        }
    }
    await manager.start(state)
    await wait_until(lambda: env.completed(event_id) is not None, 2.0)
    doc = json.loads((folder.parent / EVENT_FILE).read_text())
    assert [c["name"] for c in doc["clips"]["cam1"]] == [clips[1].path.name, clips[2].path.name]
    assert (folder / clips[1].path.name).stat().st_ino == clips[1].inode


async def test_event_json_rewrites_are_spaced_but_links_are_not(env: Env) -> None:
    env.recorder.history(1.0)
    env.recorder.start()
    manager = env.manager(write_interval=30.0)
    await manager.start()
    info = await manager.start_persistent(["cam1"], "long", 0.5, "mqtt")
    first = read_event(info)
    # New clips are linked at once, the file waits for its interval.
    await wait_until(lambda: len(linked(info, "cam1")) >= len(first["clips"]["cam1"]) + 2)
    assert read_event(info) == first
    kept = manager.set_keep(info.event_id, True)
    assert kept.persistent
    await manager.stop_persistent(["cam1"], 0.0)
    await env.wait_complete(info.event_id)
    doc = read_event(info)
    assert doc["keep"] is True
    assert doc["trigger"] == "mqtt"
    assert [c["name"] for c in doc["clips"]["cam1"]] == sorted(linked(info, "cam1"))
    with pytest.raises(EventNotFoundError):
        manager.set_keep(info.event_id, False)


async def test_mark_keep_in_progress_complete_or_missing(env: Env, tmp_path: Path) -> None:
    env.recorder.history(1.0)
    env.recorder.start()
    manager = env.manager(write_interval=30.0)
    await manager.start()
    info = await manager.capture(["cam1"], 0.5, 0.5, None, "service")
    # In progress: written at once, not after the write interval.
    assert await manager.mark_keep(info.event_id, True)
    assert read_event(info)["keep"] is True
    done = await env.wait_complete(info.event_id)
    doc = read_event(done)
    assert (doc["state"], doc["keep"]) == (STATE_COMPLETE, True)
    # Complete: event.json rewritten, the rest of it as it was.
    assert await manager.mark_keep(info.event_id, False)
    assert read_event(done) == {**doc, "keep": False}
    assert await manager.mark_keep(info.event_id, False)
    # Completing: its final write lands first, so it cannot undo the mark.
    second = await manager.capture(["cam1"], 0.5, 0.0, None, "service")
    await wait_until(lambda: second.event_id not in {e.event_id for e in manager.active_events()})
    assert await manager.mark_keep(second.event_id, True)
    await env.wait_complete(second.event_id)
    assert read_event(second)["keep"] is True
    # Nothing to mark: no folder, no event.json, not an id, a planted symlink.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / EVENT_FILE).write_text("{}")
    events = events_dir(env.storage)
    (events / "20260101-000000-000_link").symlink_to(outside, target_is_directory=True)
    (events / "20260101-000000-000_empty").mkdir()
    (events / "20260101-000000-000_file").mkdir()
    (events / "20260101-000000-000_file" / EVENT_FILE).symlink_to(outside / EVENT_FILE)
    for event_id in (
        "20260101-000000-000_none",
        "../outside",
        "20260101-000000-000_link",
        "20260101-000000-000_empty",
        "20260101-000000-000_file",
    ):
        assert not await manager.mark_keep(event_id, True), event_id
    assert (outside / EVENT_FILE).read_text() == "{}"


async def test_spaced_rewrites_catch_up(env: Env) -> None:
    env.recorder.history(1.0)
    env.recorder.start()
    manager = env.manager(write_interval=0.6)
    await manager.start()
    # A post-roll well past the rewrites waited for, so the event is still recording then.
    info = await manager.capture(["cam1"], 0.5, 10.0, None, "service")
    first = len(read_event(info)["clips"]["cam1"])
    docs: list[dict[str, Any]] = []

    def rewritten() -> bool:
        docs.append(read_event(info))
        return len(docs[-1]["clips"]["cam1"]) >= first + 2

    await wait_until(rewritten)
    assert docs[-1]["state"] == "recording"
