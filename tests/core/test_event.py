"""event.json: the one model every part of pm_dvr reads and writes it through."""

from __future__ import annotations

from dataclasses import replace
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from custom_components.pm_dvr.core import event as event_mod
from custom_components.pm_dvr.core.event import (
    EVENT_VERSION,
    ClipRecord,
    EventRecord,
    event_from_dict,
    iso_time,
    parse_time,
    read_event,
    write_event,
)
from custom_components.pm_dvr.core.layout import EVENT_FILE

EVENT_ID = "20260101-120000-000_front-door"

# As pm_dvr wrote it before event.json had a version (and before `keep`, `offline`, `errors`):
# read as it is, never refused.
OLD_FILE = """{
  "id": "20260101-120000-000_front-door",
  "label": "Front door",
  "trigger": "service",
  "cameras": ["front"],
  "requested": {"start": "2026-01-01T12:00:00.000+01:00", "end": "2026-01-01T12:00:30.000+01:00"},
  "actual": {"start": "2026-01-01T11:59:58.500+01:00", "end": "2026-01-01T12:00:31.000+01:00"},
  "clips": {
    "front": [
      {"name": "20260101-115958.mp4", "size": 1000, "start": "2026-01-01T11:59:58.500+01:00",
       "end": "2026-01-01T12:00:08.500+01:00"},
      {"name": "20260101-120008.mp4", "size": 2000, "start": "2026-01-01T12:00:08.500+01:00",
       "end": "2026-01-01T12:00:31.000+01:00"}
    ]
  },
  "state": "complete",
  "created": "2026-01-01T12:00:00.000+01:00",
  "completed": "2026-01-01T12:01:02.000+01:00"
}
"""


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_mod, "_WARNINGS", event_mod._Warnings())


def folder_of(tmp_path: Path, event_id: str = EVENT_ID) -> Path:
    folder = tmp_path / event_id
    folder.mkdir()
    return folder


def sample(**changes: Any) -> EventRecord:
    record = EventRecord(
        event_id=EVENT_ID,
        label="Front door — ночь",
        trigger="motion",
        cameras=("front", "back"),
        requested_start=1767265200.0,
        requested_end=None,
        actual_start=1767265198.5,
        actual_end=1767265230.25,
        clips={
            "front": (ClipRecord("20260101-115958.mp4", 1000, 1767265198.5, 1767265208.5),),
            "back": (),
        },
        offline=("back",),
        state="recording",
        keep=True,
        errors=("back/x.mp4: clip missing",),
        created=1767265200.125,
        completed=None,
    )
    return replace(record, **changes)


def test_round_trip(tmp_path: Path) -> None:
    folder = folder_of(tmp_path)
    record = sample()
    write_event(folder, record)
    assert read_event(folder) == record
    doc = json.loads((folder / EVENT_FILE).read_text(encoding="utf-8"))
    assert doc["version"] == EVENT_VERSION
    assert doc["requested"] == {"start": iso_time(1767265200.0), "end": None}
    assert doc["clips"]["front"][0] == {
        "name": "20260101-115958.mp4",
        "size": 1000,
        "start": iso_time(1767265198.5),
        "end": iso_time(1767265208.5),
    }
    assert "ночь" in (folder / EVENT_FILE).read_text(encoding="utf-8")  # not escaped
    # Written again from what was read: the same bytes.
    before = (folder / EVENT_FILE).read_bytes()
    again = read_event(folder)
    assert again is not None
    write_event(folder, again, durable=False)
    assert (folder / EVENT_FILE).read_bytes() == before


def test_unknown_fields_are_kept_on_rewrite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A newer pm_dvr's file: what this one knows is read, the rest written back unchanged."""
    folder = folder_of(tmp_path)
    doc = sample().as_dict()
    doc |= {"version": EVENT_VERSION + 1, "faces": [{"name": "Ann", "at": 3.5}], "rating": 5}
    (folder / EVENT_FILE).write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        record = read_event(folder)
        assert read_event(folder) == record
    assert record is not None
    assert record.label == sample().label
    assert record.version == EVENT_VERSION + 1
    assert record.extra == {"faces": [{"name": "Ann", "at": 3.5}], "rating": 5}
    assert caplog.text.count("unknown version") == 1  # once, however often it is read
    write_event(folder, replace(record, keep=False))
    rewritten = json.loads((folder / EVENT_FILE).read_text())
    assert rewritten == {**doc, "keep": False}
    # A version that is not a number at all: read as far as known too.
    (folder / EVENT_FILE).write_text(json.dumps({**doc, "version": "two"}))
    again = read_event(folder)
    assert again is not None
    assert again.version == EVENT_VERSION
    # Extra keys never shadow known ones.
    assert replace(record, extra={"label": "x"}).as_dict()["label"] == record.label


def test_old_file_without_version_reads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = folder_of(tmp_path)
    (folder / EVENT_FILE).write_text(OLD_FILE)
    with caplog.at_level(logging.WARNING):
        record = read_event(folder)
    assert caplog.text == ""
    assert record is not None
    assert record.version == EVENT_VERSION
    assert record.event_id == EVENT_ID
    assert (record.label, record.trigger, record.state) == ("Front door", "service", "complete")
    assert record.cameras == ("front",)
    assert record.keep is False
    assert (record.offline, record.errors, record.extra) == ((), (), {})
    assert record.requested_start == parse_time("2026-01-01T11:00:00+00:00")
    assert record.requested_end == record.requested_start + 30
    assert record.completed == record.requested_start + 62
    assert [(c.name, c.size) for c in record.clips["front"]] == [
        ("20260101-115958.mp4", 1000),
        ("20260101-120008.mp4", 2000),
    ]
    assert record.clips["front"][1].end == record.actual_end
    # Kept: rewritten in today's form, every field it had the same.
    write_event(folder, replace(record, keep=True))
    old, new = json.loads(OLD_FILE), json.loads((folder / EVENT_FILE).read_text())
    assert {key: new[key] for key in ("id", "label", "cameras", "state")} == {
        key: old[key] for key in ("id", "label", "cameras", "state")
    }
    assert (new["keep"], new["version"], new["offline"]) == (True, EVENT_VERSION, [])
    for key in ("created", "completed"):
        assert parse_time(new[key]) == parse_time(old[key])
    assert [parse_time(c["end"]) for c in new["clips"]["front"]] == [
        parse_time(c["end"]) for c in old["clips"]["front"]
    ]


def test_half_garbled_fields_read_as_absent() -> None:
    """Wrong types are absent, so one bad field never hides the rest of the event."""
    record = event_from_dict(
        {
            "id": 5,
            "label": ["x"],
            "trigger": None,
            "clips": {
                "front": [
                    {"name": "a.mp4", "size": "big", "start": "never", "end": None},
                    {"name": 5},
                    "junk",
                    {"name": "b.mp4", "size": True},
                ],
                "back": "junk",
                "7": [],
            },
            "requested": [1, 2],
            "actual": {"start": 17},
            "offline": "front",
            "state": 1,
            "keep": "yes",
            "errors": "none",
            "created": "soon",
            "version": True,
        },
        "folder-name",
    )
    assert record == EventRecord(
        event_id="folder-name",
        cameras=("front", "7"),  # no list of cameras: those with clips
        clips={"front": (ClipRecord("a.mp4"), ClipRecord("b.mp4")), "7": ()},
    )
    assert event_from_dict({"cameras": ["a", 3, "b"], "errors": [1, "x"]}, "e").cameras == (
        "a",
        "b",
    )
    assert event_from_dict({"errors": [1, "x"]}, "e").errors == ("1", "x")
    assert ClipRecord("a.mp4").as_dict() == {
        "name": "a.mp4",
        "size": None,
        "start": None,
        "end": None,
    }


def test_garbled_or_missing_file_reads_as_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = folder_of(tmp_path)
    assert read_event(folder) is None  # no file yet: nothing to say
    assert read_event(tmp_path / "gone") is None
    assert caplog.text == ""
    cases = {
        b'{"id": "x", "label": ': "not valid JSON",
        b"\xff\xfe{}": "not valid JSON",
        b"[1, 2]": "not a JSON object",
        b"null": "not a JSON object",
        b"[" * 100_000: "not valid JSON",
    }
    for number, (data, problem) in enumerate(cases.items()):
        folder = folder_of(tmp_path, f"case-{number}")
        (folder / EVENT_FILE).write_bytes(data)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert read_event(folder) is None
            assert read_event(folder) is None
        assert caplog.text.count(problem) == 1, data[:20]


def test_warned_again_once_the_file_was_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = folder_of(tmp_path)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            (folder / EVENT_FILE).write_text("{")
            assert read_event(folder) is None
            write_event(folder, sample())
            assert read_event(folder) == sample()
    assert caplog.text.count("not valid JSON") == 2
    # The memory of warnings is bounded: past its size it starts again.
    monkeypatch.setattr(event_mod, "_WARNED_MAX", 2)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for name in ("a", "b", "c", "a"):
            bad = folder_of(tmp_path, name)
            (bad / EVENT_FILE).write_text("[]")
            assert read_event(bad) is None
            bad.joinpath(EVENT_FILE).unlink()
            bad.rmdir()
    assert caplog.text.count("not a JSON object") == 4


def test_too_large_or_symlinked_file_is_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = folder_of(tmp_path)
    monkeypatch.setattr(event_mod, "MAX_EVENT_BYTES", 100)
    write_event(folder, sample())
    with caplog.at_level(logging.WARNING):
        assert read_event(folder) is None
    assert "too large" in caplog.text
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"label": "planted"}))
    (folder / EVENT_FILE).unlink()
    (folder / EVENT_FILE).symlink_to(outside)
    with caplog.at_level(logging.WARNING):
        assert read_event(folder) is None
    assert "cannot read (ELOOP)" in caplog.text
    # Written over, the link is replaced, never followed.
    write_event(folder, sample())
    assert not (folder / EVENT_FILE).is_symlink()
    assert json.loads(outside.read_text()) == {"label": "planted"}


def test_read_through_a_folder_descriptor(tmp_path: Path) -> None:
    """As retention reads it: relative to a folder it opened, the path only names it."""
    folder = folder_of(tmp_path)
    write_event(folder, sample())
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_event(tmp_path / "elsewhere", dir_fd=fd) == sample()
    finally:
        os.close(fd)
    (folder / EVENT_FILE).write_text("{}")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        record = read_event(folder, dir_fd=fd)
    finally:
        os.close(fd)
    assert record == EventRecord(event_id=EVENT_ID)  # its id from the folder's name


def test_atomic_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = folder_of(tmp_path)
    write_event(folder, sample())
    write_event(folder, sample(state="complete"))
    assert sorted(p.name for p in folder.iterdir()) == [EVENT_FILE]
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    write_event(folder, sample(keep=False))
    assert len(synced) == 2  # the file, then the folder (the rename)
    synced.clear()
    write_event(folder, sample(keep=True), durable=False)
    assert synced == []

    # A failure half-way: the old file stays whole, no temporary file is left.
    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        write_event(folder, sample(state="complete"))
    assert sorted(p.name for p in folder.iterdir()) == [EVENT_FILE]
    assert read_event(folder) == sample(keep=True)
    # Nothing to write into: OSError, nothing made.
    with pytest.raises(FileNotFoundError):
        write_event(tmp_path / "gone", sample())
    assert not (tmp_path / "gone").exists()


def test_folder_sync_is_best_effort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some file systems refuse to sync or open a folder: the file is written all the same."""
    folder = folder_of(tmp_path)
    real_fsync, real_open = os.fsync, os.open

    def fsync_files_only(fd: int) -> None:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_files_only)
    write_event(folder, sample())
    assert read_event(folder) == sample()
    monkeypatch.setattr(os, "fsync", real_fsync)

    def open_files_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_DIRECTORY:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_files_only)
    write_event(folder, sample(label="again"))
    monkeypatch.setattr(os, "open", real_open)
    assert read_event(folder) == sample(label="again")


def test_times() -> None:
    assert parse_time(iso_time(1767265200.123)) == pytest.approx(1767265200.123)
    assert parse_time("2026-01-01T12:00:00+01:00") == 1767265200.0
    assert parse_time("soon") is None
    assert parse_time(5) is None
