"""Named checks for the scripts that drive a real Home Assistant (smoke, browser): a failure is
printed with its traceback and counted, and the run goes on to the next check."""

from __future__ import annotations

from collections.abc import Callable
import traceback


class Checklist:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, test: Callable[[], object]) -> None:
        """One named check; a failure is reported and counted, the run goes on."""
        try:
            test()
        except Exception:  # every failure is reported, with its traceback
            self.failed.append(name)
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
        else:
            self.passed += 1
            print(f"ok   {name}", flush=True)
