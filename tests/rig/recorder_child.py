"""A recorder in a process of its own, for tests that SIGKILL it mid-clip.

``start(url, storage, segment, ready)`` runs one StreamSession + Recorder (as the integration
does) in a child and returns once the child says it records: after ``ready`` = ``("packets",
N)`` video packets or ``("clips", N)`` closed clips. The caller kills it.
"""

from __future__ import annotations

import io
from pathlib import Path
import subprocess
import sys
import time

import av

ROOT = Path(__file__).resolve().parents[2]


def start(url: str, storage: Path, segment: float, ready: tuple[str, int]) -> subprocess.Popen[str]:
    """The running child, already recording (its stdout said so)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.rig.recorder_child", url, str(storage), str(segment),
         ready[0], str(ready[1])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if line != "recording":
        child.kill()
        child.wait()
        raise RuntimeError(f"the recorder child did not start: {line!r}")
    return child


def open_part_has_footage(storage: Path, packets: int = 1) -> bool:
    """Whether the one open `.part` holds whole fragments with at least `packets` video packets."""
    from custom_components.pm_dvr.core.writer import complete_end

    parts = list(storage.rglob("*.part"))
    if len(parts) != 1:
        return False
    try:
        end, has_fragment = complete_end(parts[0])
        if not has_fragment:
            return False
        if packets <= 1:
            return True
        head = parts[0].read_bytes()[:end]
        with av.open(io.BytesIO(head)) as container:
            return sum(1 for p in container.demux(video=0) if p.size) >= packets
    except (OSError, av.error.FFmpegError):
        return False


def stop(child: subprocess.Popen[str]) -> None:
    """SIGKILL, as a power cut or the OOM killer would."""
    child.kill()
    child.wait()
    if child.stdout:
        child.stdout.close()


def _main(url: str, storage: Path, segment: float, counter: str, count: int) -> None:
    from custom_components.pm_dvr.core.clips import ClipIndex
    from custom_components.pm_dvr.core.recorder import Recorder
    from custom_components.pm_dvr.core.stream import StreamSession

    recorder = Recorder("cam", storage, ClipIndex(storage / "recordings"), segment)
    session = StreamSession("cam", url)
    session.add_sink(recorder)
    session.start()
    while getattr(recorder.stats, counter) < count:
        time.sleep(0.05)
    print("recording", flush=True)
    time.sleep(60)


if __name__ == "__main__":
    _main(sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
