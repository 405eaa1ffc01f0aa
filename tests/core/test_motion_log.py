"""The motion log: intervals by day, read back by range, pruned with the footage."""

from __future__ import annotations

from pathlib import Path
import time

import pytest

from custom_components.pm_dvr.core.motion_log import MotionLog


def local(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


@pytest.mark.usefixtures("berlin")
def test_intervals_by_day_read_back_by_range(tmp_path: Path) -> None:
    """One file per local day of the start; a range finds what overlaps it, also an interval
    that began the day before; a torn last write and an interval ending before it starts are
    ignored."""
    log = MotionLog(tmp_path, "gate")
    night = local("2025-10-25 23:59:50")  # runs past midnight into the DST day
    log.append(night, night + 20)
    dst = local("2025-10-26 12:00:00")
    log.append(dst, dst + 5)
    log.append(dst + 100, dst + 99)  # ends before it starts: not logged
    after = local("2025-10-27 08:00:00")
    log.append(after, after + 3)
    folder = tmp_path / "index" / "motion" / "gate"
    assert sorted(p.name for p in folder.iterdir()) == [
        "2025-10-25.bin",
        "2025-10-26.bin",
        "2025-10-27.bin",
    ]
    assert log.between(night - 3600, after + 3600) == [
        (night, night + 20),
        (dst, dst + 5),
        (after, after + 3),
    ]
    midnight = local("2025-10-26 00:00:05")
    assert log.between(midnight, midnight + 1) == [(night, night + 20)]
    assert log.between(dst + 6, after - 1) == []
    with (folder / "2025-10-26.bin").open("ab") as file:
        file.write(b"\x00" * 7)  # a write cut short by a power cut
    assert log.between(dst - 1, dst + 1) == [(dst, dst + 5)]
    assert MotionLog(tmp_path, "other").between(night, after) == []


@pytest.mark.usefixtures("berlin")
def test_days_before_the_oldest_clip_go(tmp_path: Path) -> None:
    """Adding an interval with the oldest clip's start deletes the days before that one."""
    log = MotionLog(tmp_path, "gate")
    first = local("2025-10-20 10:00:00")
    for day in range(5):
        log.append(first + day * 86400, first + day * 86400 + 1)
    log.append(first + 5 * 86400, first + 5 * 86400 + 1, keep_from=first + 3 * 86400 + 7200)
    assert [start for start, _ in log.between(first - 86400, first + 6 * 86400)] == [
        first + day * 86400 for day in (3, 4, 5)
    ]
    MotionLog(tmp_path, "never").prune(first)  # no folder yet: nothing to do
