"""A real Home Assistant process driven through its own HTTP APIs, as a user's browser would.

Onboarding, login and pm_dvr's config flows go through HA's REST endpoints, so this keeps working
across HA's storage format changes. Used by scripts/develop and the smoke test (tests/smoke).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

USER = PASSWORD = "dev"
ROOT = Path(__file__).resolve().parents[2]
PORT_LINE = "  server_port: "


def configuration(port: int, media: Path, log_level: str = "info") -> str:
    """A minimal configuration.yaml: the UI, streams, media and pm_dvr's logs."""
    return f"""\
homeassistant:
  name: pm_dvr dev
  unit_system: metric
  time_zone: UTC
  media_dirs:
    media: {media}
http:
{PORT_LINE}{port}
frontend:
config:
stream:
media_source:
history:
logbook:
logger:
  default: warning
  logs:
    custom_components.pm_dvr: {log_level}
"""


def port_taken(port: int) -> bool:
    """Whether something already listens on the port (another HA, say)."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HomeAssistant:
    """One HA process on a config folder, with pm_dvr linked into its custom_components."""

    def __init__(self, config: Path, port: int, python: str) -> None:
        self.config = config
        self.port = port
        self.python = python
        self.base = f"http://127.0.0.1:{port}"
        self.client_id = f"http://localhost:{port}/"
        self.process: subprocess.Popen[bytes] | None = None
        self.token: str | None = None
        self.tokens: dict[str, Any] = {}

    # -- the config folder ----------------------------------------------------------------------

    def prepare(self) -> None:
        """Write configuration.yaml (or set our port in the user's and HA's), link pm_dvr in."""
        self.config.mkdir(parents=True, exist_ok=True)
        media = self.config / "media"
        media.mkdir(exist_ok=True)
        config_file = self.config / "configuration.yaml"
        if config_file.exists():
            lines = config_file.read_text().splitlines(keepends=True)
            config_file.write_text(
                "".join(
                    f"{PORT_LINE}{self.port}\n" if line.startswith(PORT_LINE) else line
                    for line in lines
                )
            )
        else:
            config_file.write_text(configuration(self.port, media))
        # HA 2026.11 moves the http settings into its storage once, then reads only that.
        http_store = self.config / ".storage" / "http"
        if http_store.exists():
            stored = json.loads(http_store.read_text())
            stable = stored.get("data", {}).get("stable")
            if isinstance(stable, dict) and stable.get("server_port") != self.port:
                stable["server_port"] = self.port
                http_store.write_text(json.dumps(stored, indent=2))
        custom = self.config / "custom_components"
        custom.mkdir(exist_ok=True)
        link = custom / "pm_dvr"
        if not link.exists():
            link.symlink_to(ROOT / "custom_components" / "pm_dvr")

    @property
    def log_file(self) -> Path:
        return self.config / "home-assistant.log"

    # -- the process ----------------------------------------------------------------------------

    def start(self, timeout: float = 900) -> None:
        """Start HA and wait until it answers (a first start installs requirements: minutes)."""
        with (self.config / "console.log").open("ab") as console:
            self.process = subprocess.Popen(
                [self.python, "-m", "homeassistant", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=console,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Home Assistant exited ({self.process.returncode}); see {self.log_file}"
                )
            try:
                self.request("GET", "/api/onboarding", timeout=5)
                return
            except urllib.error.HTTPError as err:
                if err.code == 404:  # onboarding finished on an earlier run: its views are gone
                    return
                time.sleep(1)
            except (urllib.error.URLError, OSError):
                time.sleep(1)
        raise RuntimeError("Home Assistant did not answer in time")

    def wait_running(self, timeout: float = 300) -> None:
        """Wait until HA has finished starting (its API says RUNNING).

        HA answers HTTP while it still sets integrations up, and it installs its SIGTERM handler
        only once started: a SIGTERM before that ends it at once, with nothing saved.
        """
        deadline = time.monotonic() + timeout
        while self.request("GET", "/api/config").get("state") != "RUNNING":
            if time.monotonic() > deadline:
                raise RuntimeError("Home Assistant did not finish starting in time")
            time.sleep(0.5)

    def stop(self, timeout: float = 120) -> int | None:
        """Stop HA as systemd would (SIGTERM), SIGKILL only when it hangs; its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            if self.token:
                with contextlib.suppress(OSError, RuntimeError, urllib.error.URLError):
                    self.wait_running()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    @contextlib.contextmanager
    def running(self) -> Iterator[HomeAssistant]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # -- HTTP -----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        form: bool = False,
        timeout: float = 60,
        auth: bool = True,
    ) -> Any:
        """One HTTP call to HA; JSON in and out."""
        headers = {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def ws(self, message: dict[str, Any]) -> dict[str, Any]:
        """One websocket command, as the frontend sends it; HA's reply."""
        return asyncio.run(self._ws(message))

    async def _ws(self, message: dict[str, Any]) -> dict[str, Any]:
        import aiohttp  # HA's own dependency: the rig runs in HA's venv

        url = self.base.replace("http", "ws", 1) + "/api/websocket"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
            await socket.receive_json()
            await socket.send_json({"type": "auth", "access_token": self.token})
            auth = await socket.receive_json()
            if auth["type"] != "auth_ok":
                raise RuntimeError(f"websocket login refused: {auth}")
            await socket.send_json({"id": 1, **message})
            reply: dict[str, Any] = await socket.receive_json()
            return reply

    def confirm_http_config(self) -> None:
        """Confirm our port, as the frontend's "Confirm" button does.

        HA 2026.11 moves the http settings of configuration.yaml into its storage as a trial,
        and without a confirmation reverts to port 8123 and restarts five minutes later. HA
        2025.4 has no such trial (and no such command): nothing to do there.
        """
        reply = self.ws({"type": "http/config/promote"})
        if not reply.get("success"):
            code = reply.get("error", {}).get("code")
            if code not in ("unknown_command", "not_allowed"):  # not_allowed: nothing pending
                raise RuntimeError(f"confirming the http settings failed: {reply}")

    def onboard(self) -> str:
        """Create the owner dev/dev and finish onboarding (or log in when it is done)."""
        try:
            steps = {step["step"]: step["done"] for step in self.request("GET", "/api/onboarding")}
        except urllib.error.HTTPError as err:  # the onboarding views are gone once it is done
            if err.code != 404:
                raise
            steps = {"user": True}
        if steps.get("user"):
            return self.login()
        code = self.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": self.client_id,
                "name": "Dev",
                "username": USER,
                "password": PASSWORD,
                "language": "en",
            },
        )["auth_code"]
        self.token = self._token(code)
        for step in ("core_config", "analytics"):
            self.request("POST", f"/api/onboarding/{step}", {})
        self.request(
            "POST",
            "/api/onboarding/integration",
            {"client_id": self.client_id, "redirect_uri": self.client_id},
        )
        return self.token

    def login(self) -> str:
        """Log in as dev through the login flow, as the frontend does."""
        self.token = None
        flow = self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
        )
        result = self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": USER, "password": PASSWORD},
        )
        self.token = self._token(result["result"])
        return self.token

    def _token(self, code: str) -> str:
        """The access token of a login; all of HA's answer (the refresh token a browser keeps
        as well) is in `tokens`."""
        self.tokens = self.request(
            "POST",
            "/auth/token",
            {"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
            form=True,
            auth=False,
        )
        return str(self.tokens["access_token"])

    # -- pm_dvr ---------------------------------------------------------------------------------

    def hub_entry(self) -> dict[str, Any] | None:
        entries = self.request("GET", "/api/config/config_entries/entry?domain=pm_dvr")
        return entries[0] if entries else None

    def add_hub(self, storage: Path) -> str:
        """pm_dvr's hub through its config flow, once; returns the entry id."""
        if (entry := self.hub_entry()) is not None:
            return str(entry["entry_id"])
        # The first flow imports pm_dvr (PyAV, OpenCV, NumPy): slow on a busy machine.
        flow = self.request(
            "POST", "/api/config/config_entries/flow", {"handler": "pm_dvr"}, timeout=300
        )
        result = self.request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"storage_path": str(storage)},
            timeout=300,
        )
        return str(result["result"]["entry_id"])

    def add_subentry(self, entry_id: str, kind: str, *steps: dict[str, Any]) -> dict[str, Any]:
        """One subentry flow (camera, target), answering its steps in order."""
        flow = self.request(
            "POST", "/api/config/config_entries/subentries/flow", {"handler": [entry_id, kind]}
        )
        result: dict[str, Any] = flow
        for step in steps:
            result = self.request(
                "POST", f"/api/config/config_entries/subentries/flow/{flow['flow_id']}", step
            )
        return result

    def add_camera(self, entry_id: str, name: str, url: str) -> dict[str, Any]:
        return self.add_subentry(
            entry_id,
            "camera",
            {
                "name": name,
                "stream_url": url,
                "record": True,
                "audio": "auto",
                "pre_seconds": 10,
                "post_seconds": 30,
            },
        )

    def states(self) -> dict[str, dict[str, Any]]:
        return {state["entity_id"]: state for state in self.request("GET", "/api/states")}

    def call(self, domain: str, service: str, data: dict[str, Any]) -> Any:
        return self.request("POST", f"/api/services/{domain}/{service}", data)
