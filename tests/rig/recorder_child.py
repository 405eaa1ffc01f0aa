"""A recorder in a process of its own, for tests that SIGKILL it mid-clip.

``start(url, storage, segment, ready)`` runs one StreamSession + Recorder (as the integration
does) in a child and returns once the child says it records: after ``ready`` = ``("packets",
N)`` video packets or ``("clips", N)`` closed clips. The caller kills it.
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import time

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
