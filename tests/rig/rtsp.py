"""Start, stop and restart the real RTSP server (tests/rig/rtsp_server.py) from tests and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import time

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = os.environ.get("PM_DVR_GST_PYTHON", "/usr/bin/python3")


class RtspServer:
    """One gst-rtsp-server process; keeps its port across restarts so URLs stay valid."""

    def __init__(self, mounts: dict[str, str] | None = None, auth: str | None = None) -> None:
        self.mounts = mounts or {"/cam": "synthetic"}
        self.auth = auth
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    def url(self, path: str = "/cam", credentials: str | None = None) -> str:
        """The URL of one mount, optionally with user:password inside."""
        userinfo = f"{credentials}@" if credentials else ""
        return f"rtsp://{userinfo}127.0.0.1:{self.port}{path}"

    def start(self) -> RtspServer:
        """Start the server and wait until it listens (on the old port after a restart)."""
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for path, source in self.mounts.items():
            cmd += ["--mount", f"{path}={source}"]
        if self.auth:
            cmd += ["--auth", self.auth]
        deadline = time.monotonic() + 15
        while True:
            self.process = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            assert self.process.stdout is not None
            line = self.process.stdout.readline().strip()
            if line.startswith("serving rtsp://"):
                self.port = int(line.rsplit(":", 1)[1])
                return self
            self.process.wait()
            if time.monotonic() > deadline:  # the old port may linger briefly after a kill
                raise RuntimeError(f"RTSP server did not start: {line!r}")
            time.sleep(0.2)

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
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
