"""A real Mosquitto broker (Debian package) on a free loopback port, plus its command-line clients.

Mosquitto 2.0 does not report the port it picked for `listener 0`, so the rig finds a free one
by binding a socket first and starts the broker on it (retrying if another process took it in
between). Readiness and subscriptions are read from the broker's own log (`log_type all`).
Everything is stopped by PID; a missing binary is an error, never a skip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import re
import shutil
import socket
import subprocess
import threading
import time

MOSQUITTO = "mosquitto"
MOSQUITTO_PUB = "mosquitto_pub"
MOSQUITTO_SUB = "mosquitto_sub"
# Both print through stdio, fully buffered into a pipe: line buffering makes each line visible.
LINE_BUFFERED = ("stdbuf", "-oL")
_SBIN = ("/usr/sbin", "/usr/bin")


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (f"{d}/{name}" for d in _SBIN if Path(f"{d}/{name}").exists()), None
    )
    if found is None:
        raise RuntimeError(f"{name} is missing: install Debian's mosquitto (scripts/setup does)")
    return found


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Lines:
    """Collects a process's output lines in a thread, so tests can wait for one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        assert process.stdout is not None
        self._stream = process.stdout
        self._thread = threading.Thread(target=self._read, name="mosquitto-log", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """The first line (old or new) that matches; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise AssertionError(f"no matching line within {timeout} s: {self.lines[-5:]}")
                self._cond.wait(min(left, 0.2))

    def close(self) -> None:
        self._thread.join(timeout=10)
        self._stream.close()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Mosquitto:
    """One broker process, anonymous, no persistence, bound to 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.log: _Lines | None = None

    def start(self) -> Mosquitto:
        """Start on a free port; returns once the broker accepts connections."""
        binary = _binary(MOSQUITTO)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            self.port = free_port()
            config = self.workdir / "mosquitto.conf"
            config.write_text(
                f"listener {self.port} {self.host}\n"
                "allow_anonymous true\npersistence false\nlog_dest stdout\nlog_type all\n"
            )
            self.process = subprocess.Popen(
                [*LINE_BUFFERED, binary, "-c", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            self.log = _Lines(self.process)
            try:
                self.log.wait(lambda line: line.endswith(" running"), timeout=10)
                return self
            except AssertionError:
                self.stop()  # the port was taken meanwhile: try another
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """Stop the broker by its PID and wait for it."""
        if self.process is not None:
            _stop(self.process)
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def wait_for_subscription(self, topic: str, timeout: float = 20.0) -> None:
        """Until some client's SUBSCRIBE to exactly `topic` reached the broker."""
        assert self.log is not None
        pattern = re.compile(rf"^\d+: \t{re.escape(topic)} \(QoS \d\)$")
        self.log.wait(lambda line: pattern.match(line) is not None, timeout)

    def publish(self, topic: str, payload: str | bytes) -> None:
        """Publish one message with mosquitto_pub (an independent client). Blocking."""
        data = payload.encode() if isinstance(payload, str) else payload
        subprocess.run(
            [_binary(MOSQUITTO_PUB), "-h", self.host, "-p", str(self.port), "-t", topic]
            + (["-s"] if data else ["-n"]),  # -s reads the message from stdin, -n sends it empty
            input=data,
            check=True,
            timeout=10,
        )

    def subscribe(self, topic: str) -> Subscriber:
        """A mosquitto_sub on `topic`, subscribed (checked in the broker log) when returned."""
        subscriber = Subscriber(self, topic)
        self.wait_for_subscription(topic)
        return subscriber

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Subscriber:
    """mosquitto_sub printing each payload on its own line."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.process = subprocess.Popen(
            [
                *LINE_BUFFERED,
                _binary(MOSQUITTO_SUB),
                "-h",
                broker.host,
                "-p",
                str(broker.port),
                "-t",
                topic,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines = _Lines(self.process)

    @property
    def messages(self) -> list[str]:
        """Payloads received so far."""
        return list(self._lines.lines)

    def stop(self) -> None:
        """Stop the client by its PID."""
        _stop(self.process)
        self._lines.close()
