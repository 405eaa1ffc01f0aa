"""Install, start, stop and restart a real Azurite blob emulator for tests and benchmarks.

Azurite 3.35.0 is pinned (later versions need node >= 22). It is installed with npm into
~/.cache/pm_dvr/azurite (override with PM_DVR_AZURITE_DIR) when missing. It always listens on
127.0.0.1 with telemetry off. The rig opens no socket itself: Azurite picks a free port and prints
it, which lets module-scoped fixtures work under pytest-socket too.

CLI: `python tests/rig/azurite.py --install` only installs (for scripts/test and CI).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
import time

AZURITE_VERSION = "3.35.0"
INSTALL_DIR = Path(
    os.environ.get("PM_DVR_AZURITE_DIR", Path.home() / ".cache" / "pm_dvr" / "azurite")
)
ACCOUNT_NAME = "devstoreaccount1"
# Microsoft's published, public emulator key (not a secret).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_LISTENING = re.compile(r"successfully listens on http://127\.0\.0\.1:(\d+)")


def binary(install_dir: Path = INSTALL_DIR) -> Path:
    """Path of the azurite-blob launcher inside the install dir."""
    return install_dir / "node_modules" / ".bin" / "azurite-blob"


def installed_version(install_dir: Path = INSTALL_DIR) -> str | None:
    """The installed Azurite version, or None."""
    package = install_dir / "node_modules" / "azurite" / "package.json"
    try:
        return str(json.loads(package.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


def install(install_dir: Path = INSTALL_DIR) -> Path:
    """Install the pinned Azurite with npm unless it is already there; return the launcher."""
    if installed_version(install_dir) == AZURITE_VERSION and binary(install_dir).exists():
        return binary(install_dir)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install Azurite (apt-get install nodejs npm)")
    install_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(install_dir),
            "--no-audit",
            "--no-fund",
            "--loglevel",
            "error",
            f"azurite@{AZURITE_VERSION}",
        ],
        check=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    if installed_version(install_dir) != AZURITE_VERSION:
        raise RuntimeError(f"npm did not install azurite {AZURITE_VERSION}")
    return binary(install_dir)


class Azurite:
    """One azurite-blob process; keeps its port across stop()/start() so clients stay valid.

    location: persist blobs there (survives restarts); None keeps them in memory.
    """

    def __init__(self, location: Path | None = None, memory_limit_mb: int = 1024) -> None:
        self.location = location
        self.memory_limit_mb = memory_limit_mb
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._logdir = tempfile.TemporaryDirectory(prefix="pm_dvr-azurite-")
        self._log = Path(self._logdir.name) / "azurite.log"

    @property
    def blob_endpoint(self) -> str:
        """The account's blob endpoint URL."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """A full connection string for the emulator account."""
        return self.connection_string_with_key(ACCOUNT_KEY)

    def connection_string_with_key(self, key: str) -> str:
        """A connection string with another account key (to test rejected credentials)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def start(self, timeout: float = 30.0) -> Azurite:
        """Start (installing first if needed) and wait until it listens."""
        launcher = install()
        storage = (
            ["--location", str(self.location)]
            if self.location is not None
            else ["--inMemoryPersistence", "--extentMemoryLimit", str(self.memory_limit_mb)]
        )
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(launcher),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            *storage,
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]
        deadline = time.monotonic() + timeout
        while True:
            with self._log.open("wb") as log:
                self.process = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.location or self._logdir.name,
                    start_new_session=True,
                )
            port = self._wait_listening(deadline)
            if port is not None:
                self.port = port
                return self
            self.stop()
            if time.monotonic() > deadline:  # pragma: no cover - only when the machine is broken
                raise RuntimeError(f"Azurite did not start: {self._log_tail()}")
            time.sleep(0.2)  # the port may still be held by the previous process

    def _wait_listening(self, deadline: float) -> int | None:
        assert self.process is not None
        while time.monotonic() < deadline:
            match = _LISTENING.search(self._log.read_text(errors="replace"))
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def _log_tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-500:]
        except OSError:
            return ""

    def stop(self, kill: bool = False) -> None:
        """Stop the process (SIGKILL when kill) and reap it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        """Stop and remove the log directory."""
        self.stop()
        self._logdir.cleanup()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="install Azurite if missing")
    args = parser.parse_args(argv)
    if args.install:
        path = install()
        print(f"azurite {installed_version()} at {path}")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
