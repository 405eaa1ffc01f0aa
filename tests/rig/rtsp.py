"""Start, stop and restart the real RTSP server (tests/rig/rtsp_server.py) from tests and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path
import random
import subprocess
import threading
import time

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = os.environ.get("PM_DVR_GST_PYTHON", "/usr/bin/python3")
# A mount source whose video pm_dvr cannot record by copy (VP8 over RTP).
VP8 = (
    "launch:( videotestsrc is-live=true ! video/x-raw,width=320,height=176,framerate=10/1"
    " ! vp8enc deadline=1 ! rtpvp8pay name=pay0 pt=96 )"
)


def _port_below_ephemeral() -> int:
    """A random port below the kernel's ephemeral range (32768 and up): a server restarted on it
    cannot lose it, while it is down, to another test's server asking for any free port (a
    camera's outage would then end early, on the wrong camera). If it is taken, the server fails
    to bind and ``start`` draws another. (No probe socket: tests may not open sockets.)"""
    return random.randrange(20000, 32000)


class RtspServer:
    """One gst-rtsp-server process; keeps its port across restarts so URLs stay valid."""

    def __init__(self, mounts: dict[str, str] | None = None, auth: str | None = None) -> None:
        self.mounts = mounts or {"/cam": "synthetic"}
        self.auth = auth
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        # RTSP clients: connected now, the most at once, and every connection ever made.
        self.clients = 0
        self.max_clients = 0
        self.connections = 0
        self._reader: threading.Thread | None = None

    def url(self, path: str = "/cam", credentials: str | None = None) -> str:
        """The URL of one mount, optionally with user:password inside."""
        userinfo = f"{credentials}@" if credentials else ""
        return f"rtsp://{userinfo}127.0.0.1:{self.port}{path}"

    def start(self) -> RtspServer:
        """Start the server and wait until it listens (on the old port after a restart)."""
        options: list[str] = []
        for path, source in self.mounts.items():
            options += ["--mount", f"{path}={source}"]
        if self.auth:
            options += ["--auth", self.auth]
        first = self.port == 0
        if first:
            self.port = _port_below_ephemeral()
        deadline = time.monotonic() + 15
        while True:
            cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), *options]
            self.process = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            assert self.process.stdout is not None
            line = self.process.stdout.readline().strip()
            if line.startswith("serving rtsp://"):
                self.port = int(line.rsplit(":", 1)[1])
                self.clients = 0
                self._reader = threading.Thread(
                    target=self._count_clients, args=(self.process,), daemon=True
                )
                self._reader.start()
                return self
            self.process.wait()
            if time.monotonic() > deadline:  # the old port may linger briefly after a kill
                raise RuntimeError(f"RTSP server did not start: {line!r}")
            if first:  # (the port was taken: draw another)
                self.port = _port_below_ephemeral()
            time.sleep(0.2)

    def _count_clients(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("client +"):
                self.clients += 1
                self.connections += 1
                self.max_clients = max(self.max_clients, self.clients)
            elif line.startswith("client -"):
                self.clients -= 1

    def reset_counts(self) -> None:
        """Count from now on: the most clients at once and the connections made."""
        self.max_clients = self.clients
        self.connections = 0

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGKILL when kill, like a camera losing power)."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None
        self.clients = 0

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
