"""The stream test's errors for cameras that cannot be reached, over real sockets and the real RTSP
server: each failure named for what happened (issue #16), never "unsupported codec" for a camera
that did not answer."""

from __future__ import annotations

from collections.abc import Iterator
import os
import signal
import time
import traceback

import pytest

from custom_components.pm_dvr.core.errors import (
    CannotConnectError,
    StreamNotFoundError,
    TimedOutError,
    UnsupportedCodecError,
)
from custom_components.pm_dvr.core.probe import open_stream, probe_stream

from ..rig.rtsp import VP8, RtspServer
from ..rig.sockets import SilentServer, UnansweredPort, closed_port

# The test harness (pytest-socket) blocks sockets unless asked: these tests open their own.
pytestmark = pytest.mark.usefixtures("socket_enabled")

TIMEOUT = 2.0


def test_closed_port_cannot_connect() -> None:
    """Connection refused (FFmpeg: ConnectionRefusedError), at once."""
    started = time.monotonic()
    with pytest.raises(CannotConnectError, match="ConnectionRefusedError") as caught:
        probe_stream(f"rtsp://127.0.0.1:{closed_port()}/cam", timeout=TIMEOUT)
    assert caught.value.translation_key == "cannot_connect"
    assert time.monotonic() - started < TIMEOUT


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://127.0.0.1:{port}/cam?user=admin&password=hunter2",
        "rtsp://admin:hunter2@127.0.0.1:{port}/cam?channel=1&PassWord=hunter2",
        "http://127.0.0.1:{port}/cgi?usr=admin&pwd=hunter2",
    ],
)
def test_errors_never_show_the_password(url: str) -> None:
    """Neither our error nor FFmpeg's chained to it (its filename is the URL) holds a secret:
    a traceback logged with it shows the URL masked."""
    with pytest.raises(CannotConnectError) as caught:
        probe_stream(url.format(port=closed_port()), timeout=TIMEOUT)
    text = "".join(traceback.format_exception(caught.value))
    assert "hunter2" not in text
    assert "***" in str(caught.value)
    assert caught.value.__cause__ is not None
    assert "127.0.0.1" in str(caught.value.__cause__)


def test_plain_os_error_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError that is not FFmpeg's keeps its filename apart from its args: masked too."""
    url = f"rtsp://127.0.0.1:{closed_port()}/cam?password=hunter2"

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(111, "Connection refused", url)

    monkeypatch.setattr("av.open", refuse)
    with pytest.raises(CannotConnectError) as caught:
        open_stream(url)
    assert "hunter2" not in "".join(traceback.format_exception(caught.value))


def test_unanswered_address_cannot_connect() -> None:
    """No answer to the connection at all, as for an unroutable address (FFmpeg: TimeoutError
    from connect): the camera is not reachable, which is not the same as a camera that hangs."""
    with UnansweredPort() as port, pytest.raises(CannotConnectError, match="TimeoutError"):
        probe_stream(port.url(), timeout=TIMEOUT)


def test_silent_server_times_out() -> None:
    """A server that accepts the connection and never sends a byte (FFmpeg: InvalidDataError once
    its socket timeout expired) is "timed out", not an unsupported codec."""
    with SilentServer() as server:
        started = time.monotonic()
        with pytest.raises(TimedOutError, match="did not answer within 2 s") as caught:
            probe_stream(server.url(), timeout=TIMEOUT)
        waited = time.monotonic() - started
    assert caught.value.translation_key == "timed_out"
    assert server.accepted == 1
    assert TIMEOUT <= waited < TIMEOUT + 10


def test_open_timeout_shorter_than_read_timeout_times_out() -> None:
    """The session's own timeouts: whichever expires first ends the wait for an answer."""
    with SilentServer() as server, pytest.raises(TimedOutError):
        open_stream(server.url(), open_timeout=1.0, read_timeout=3.0)


def test_server_that_hangs_up_cannot_connect() -> None:
    """Accepted and closed at once (FFmpeg: InvalidDataError, without waiting): no RTSP server
    there, or none that lets us in. Not a timeout, not a codec."""
    with SilentServer(close=True) as server:
        with pytest.raises(CannotConnectError, match="without an RTSP answer") as caught:
            probe_stream(server.url(), timeout=TIMEOUT)
        assert server.accepted == 1
    assert not isinstance(caught.value, UnsupportedCodecError)


@pytest.fixture
def rtsp_vp8() -> Iterator[RtspServer]:
    """The real server with an H.264 camera and a VP8 one (a codec pm_dvr cannot copy)."""
    with RtspServer({"/cam": "synthetic:320x180@25:300:25", "/vp8": VP8}) as server:
        yield server


def test_real_server_errors(rtsp_vp8: RtspServer) -> None:
    """The real RTSP server: a wrong path is "not found" (FFmpeg: HTTPNotFoundError); VP8 video is
    the one unsupported codec; frozen (SIGSTOP: the kernel still accepts connections) it times
    out; killed, its port refuses."""
    info = probe_stream(rtsp_vp8.url("/cam"), timeout=10)
    assert info.video_codec == "h264"
    with pytest.raises(StreamNotFoundError):
        probe_stream(rtsp_vp8.url("/nope"), timeout=TIMEOUT)
    with pytest.raises(UnsupportedCodecError, match=r"vp8 is not H\.264 or H\.265"):
        probe_stream(rtsp_vp8.url("/vp8"), timeout=10)
    process = rtsp_vp8.process
    assert process is not None
    os.kill(process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(TimedOutError):
            probe_stream(rtsp_vp8.url("/cam"), timeout=TIMEOUT)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    url = rtsp_vp8.url("/cam")
    rtsp_vp8.stop(kill=True)
    with pytest.raises(CannotConnectError, match="ConnectionRefusedError"):
        probe_stream(url, timeout=TIMEOUT)
