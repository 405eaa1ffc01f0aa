"""Local TCP ports that fail the way unreachable or hung cameras do, for the stream test's errors.

- `closed_port()`: nothing listens, so a connection is refused at once.
- `SilentServer`: accepts every connection and never sends a byte (a hung camera, a blackhole).
- `SilentServer(close=True)`: accepts and closes at once (another service on the port, or a
  camera out of client slots).
- `UnansweredPort`: a listener whose accept queue is full, so the kernel drops every new SYN:
  a connection attempt gets no answer at all, as for an unroutable or firewalled address.
"""

from __future__ import annotations

import contextlib
import socket
import threading

HOST = "127.0.0.1"


def closed_port() -> int:
    """A port nothing listens on (bound for a moment to find a free one)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


class SilentServer:
    """Accepts TCP connections and never answers (or, with close, hangs up at once)."""

    def __init__(self, close: bool = False) -> None:
        self.close = close
        self.accepted = 0
        self._listener = socket.socket()
        self._listener.bind((HOST, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent server", daemon=True)

    def url(self, scheme: str = "rtsp") -> str:
        return f"{scheme}://{HOST}:{self.port}/cam"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            if self.close:
                conn.close()
            else:
                self._held.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in (*self._held, self._listener):
            conn.close()


class UnansweredPort:
    """A port where connection attempts time out: its one-slot accept queue is kept full."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind((HOST, 0))
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []

    def url(self, scheme: str = "rtsp") -> str:
        return f"{scheme}://{HOST}:{self.port}/cam"

    def __enter__(self) -> UnansweredPort:
        # Linux takes one connection more than the backlog into the queue; the rest wait on
        # SYN retransmits. Never accepted, the queue stays full for as long as this is open.
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((HOST, self.port))
            self._fillers.append(filler)
        with socket.socket() as probe:
            probe.settimeout(1.0)
            try:
                probe.connect((HOST, self.port))
            except TimeoutError:
                return self
        self.__exit__()
        raise RuntimeError("the kernel answered a connection to a full accept queue")

    def __exit__(self, *exc: object) -> None:
        for sock in (*self._fillers, self._listener):
            sock.close()
