"""Helpers for pm_dvr's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time


async def wait_for(
    predicate: Callable[[], object], timeout: float = 20.0, step: float = 0.1
) -> None:
    """Poll until the predicate holds (the recorder and sessions run in their own threads)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
