"""A camera that delivers faster than real time: a video file served as live MPEG-TS over HTTP.

Each GET remuxes the file (stream copy) and sends every packet at `speed` times its own
timestamps, flushed at once: at speed 4 a 20-s file arrives in 5 s, like a camera or restreamer
catching up on a backlog. The session does not pace network streams, so the recorder sees the
packets as they arrive. Runs in a thread of the test process; stop() ends it.
"""

from __future__ import annotations

import contextlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import threading
import time

import av
import av.error

from custom_components.pm_dvr.core.avcompat import add_template_stream


class PacedHttpServer:
    """Serves `source` at http://127.0.0.1:PORT/cam.ts, `speed` times faster than real time."""

    def __init__(self, source: Path, speed: float) -> None:
        self.source = source
        self.speed = speed
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self) -> str:
        """The stream's URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/cam.ts"

    def start(self) -> PacedHttpServer:
        """Listen on a free port."""
        rig = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                # Until the end, or until the client goes away (PyAV reports that as a callback
                # error when it closes the output).
                with contextlib.suppress(OSError, av.error.FFmpegError, RuntimeError):
                    rig._send(self.wfile)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _send(self, wfile: object) -> None:
        with (
            av.open(str(self.source)) as src,
            av.open(wfile, "w", format="mpegts", container_options={"flush_packets": "1"}) as out,
        ):
            stream = add_template_stream(out, src.streams.video[0])
            origin = time.monotonic()
            for packet in src.demux(video=0):
                if not packet.size or packet.dts is None or packet.time_base is None:
                    continue
                wait = origin + float(packet.dts * packet.time_base) / self.speed - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                packet.stream = stream
                out.mux(packet)

    def stop(self) -> None:
        """Stop serving (open responses end at their next packet)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
