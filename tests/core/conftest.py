"""Fixtures of the core tests (no Home Assistant needed)."""

from __future__ import annotations

from collections.abc import Iterator
import os
import time

import pytest

from ..rig.rtsp import RtspServer


@pytest.fixture(scope="module")
def rtsp_server_core() -> Iterator[RtspServer]:
    """A shared real RTSP server for the core tests of one module."""
    server = RtspServer({"/cam": "synthetic:320x180@25:300:25"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rtsp_private_core() -> Iterator[RtspServer]:
    """A server the test may stall or kill."""
    server = RtspServer({"/cam": "synthetic:320x180@25:300:25"})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rtsp_auth_core() -> Iterator[RtspServer]:
    """A real RTSP server that wants admin:s3cret."""
    server = RtspServer({"/cam": "synthetic:320x180@15:300:30"}, auth="admin:s3cret")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def berlin() -> Iterator[None]:
    """Local time with a DST change (Europe/Berlin: 26 Oct 2025, 03:00 back to 02:00)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()
