"""Helpers for pm_dvr's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import time
from typing import Any


async def wait_for(
    predicate: Callable[[], object], timeout: float = 20.0, step: float = 0.1
) -> None:
    """Poll until the predicate holds (the recorder and sessions run in their own threads)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


def form_text(result: Mapping[str, Any]) -> str:
    """Everything a flow's step shows: defaults, suggested values, errors, placeholders, title."""
    schema = result.get("data_schema")
    keys = schema.schema if schema is not None else ()
    shown = [
        schema({}) if schema is not None else None,
        [getattr(key, "description", None) for key in keys],
        result.get("errors"),
        result.get("description_placeholders"),
        result.get("title"),
        result.get("reason"),
    ]
    return repr(shown)
