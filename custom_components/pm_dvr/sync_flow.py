"""Flows of sync targets: the `target` subentry flow (add, reconfigure) and the Azure reauth.

Each target is tested before it is saved: Azure by writing and deleting a probe blob (the
container is created when missing), a folder by a probe file, rclone by creating and listing the
remote path. Secrets (connection string, account key, SAS) are stored in the subentry only; forms
show them as `***` and keep the stored value when `***` comes back; titles never carry them.

Subentries have no reauth of their own (HA 2025.4 to 2026.x), so a refused Azure login starts the
hub's reauth flow with the target's subentry id in its data (`entry.async_start_reauth`): HA links
that flow to the hub, shows it under Repairs, and the flow updates only that subentry.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
import hashlib
import os
from pathlib import Path
import re
from typing import Any

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import selector
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import voluptuous as vol

from .const import (
    CONF_ACCOUNT_URL,
    CONF_CAMERAS,
    CONF_CONNECTION_STRING,
    CONF_CONTAINER,
    CONF_CREDENTIAL,
    CONF_DELETE_AFTER_UPLOAD,
    CONF_LABELS,
    CONF_NAME,
    CONF_PATH,
    CONF_PREFIX,
    CONF_RCLONE_CONFIG,
    CONF_REMOTE,
    CONF_RETRY_DAYS,
    CONF_SLUG,
    CONF_STORAGE_PATH,
    CONF_TARGET_TYPE,
    CONF_UPLOAD,
    DEFAULT_RETRY_DAYS,
    MAX_RETRY_DAYS,
    SUBENTRY_CAMERA,
    SUBENTRY_TARGET,
    TARGET_AZURE,
    TARGET_FOLDER,
    TARGET_RCLONE,
    TARGET_TYPES,
    UPLOAD_EVENTS,
    UPLOAD_MODES,
)
from .core.sync import (
    AzureBlobTarget,
    AzureTuning,
    FolderConfig,
    FolderTarget,
    RcloneConfig,
    RcloneTarget,
    SyncError,
    SyncTarget,
    build_client,
)
from .sync import REAUTH_TARGET, azure_config, rclone_binary

MASK = "***"
# Azure's container naming rule: 3-63 lowercase letters, digits and single hyphens.
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$")
# SyncError reasons that have their own message; anything else is "request_failed".
_KNOWN_REASONS = frozenset(
    {"auth_failed", "unreachable", "timeout", "not_writable", "rclone_missing", "invalid_config"}
)
PASSWORD = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
# A flow answers fast: one SDK retry, short timeouts (the engine keeps the patient defaults).
FLOW_TUNING = AzureTuning(
    retry_total=1,
    retry_backoff=1.0,
    connection_timeout=10.0,
    read_timeout=20.0,
    request_timeout=30.0,
)
URL = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.URL))
RETRY_DAYS = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=1,
        max=MAX_RETRY_DAYS,
        step=1,
        mode=selector.NumberSelectorMode.BOX,
        unit_of_measurement="days",
    )
)


def error_key(err: SyncError) -> str:
    """The form error for a failed target check."""
    return err.reason if err.reason in _KNOWN_REASONS else "request_failed"


async def _async_check(target: SyncTarget) -> str | None:
    """Validate a target and close it; the error key, or None when it works."""
    try:
        await target.validate()
    except SyncError as err:
        return error_key(err)
    finally:
        await target.close()
    return None


async def async_validate_azure(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> tuple[str | None, str]:
    """Build the client (in the executor) and probe the container.

    Returns (error key or None, `<host>/<account>`: who the credentials reach, never a secret).
    """
    config = azure_config(data)
    run = hass.async_add_executor_job
    try:
        client = await run(build_client, config, async_get_clientsession(hass), FLOW_TUNING)
    except SyncError as err:
        return error_key(err), ""
    identity = f"{client.primary_hostname}/{client.account_name}"
    target = AzureBlobTarget(config, client, run_in_executor=run, tuning=FLOW_TUNING)
    return await _async_check(target), identity


def _unmask(submitted: str | None, stored: str | None) -> str | None:
    """The stored secret when the form sent back its mask, else what was typed."""
    value = (submitted or "").strip()
    if value == MASK and stored:
        return stored
    return value or None


def _masked(value: str | None) -> str | None:
    return MASK if value else None


def rclone_title(remote: str) -> str:
    """A title for an rclone remote: inline remotes (`:backend,key=...:path`) show the backend."""
    if remote.startswith(":"):
        return f":{re.split(r'[,:]', remote[1:], maxsplit=1)[0]}"
    return remote


def _suggested(value: Any) -> dict[str, Any]:
    return {"suggested_value": value}


class TargetSubentryFlow(ConfigSubentryFlow):
    """Add or change a sync target: where to upload, then what to upload."""

    def __init__(self) -> None:
        self._current: dict[str, Any] = {}
        self._target: dict[str, Any] = {}
        self._title = ""
        self._unique_id = ""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Choose the kind of target."""
        return self.async_show_menu(step_id="user", menu_options=TARGET_TYPES)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a target: its connection form (prefilled, secrets masked), then its options."""
        subentry = self._get_reconfigure_subentry()
        self._current = {**subentry.data, CONF_NAME: subentry.title}
        steps: dict[str, Callable[[], Coroutine[Any, Any, SubentryFlowResult]]] = {
            TARGET_AZURE: self.async_step_azure_blob,
            TARGET_FOLDER: self.async_step_folder,
            TARGET_RCLONE: self.async_step_rclone,
        }
        return await steps[subentry.data[CONF_TARGET_TYPE]]()

    async def async_step_azure_blob(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Azure Blob Storage: a connection string, or an account URL with a key or SAS."""
        current = self._current
        errors: dict[str, str] = {}
        if user_input is not None:
            target = {
                CONF_TARGET_TYPE: TARGET_AZURE,
                CONF_CONNECTION_STRING: _unmask(
                    user_input.get(CONF_CONNECTION_STRING), current.get(CONF_CONNECTION_STRING)
                ),
                CONF_ACCOUNT_URL: (user_input.get(CONF_ACCOUNT_URL) or "").strip() or None,
                CONF_CREDENTIAL: _unmask(
                    user_input.get(CONF_CREDENTIAL), current.get(CONF_CREDENTIAL)
                ),
                CONF_CONTAINER: user_input[CONF_CONTAINER].strip(),
                CONF_PREFIX: (user_input.get(CONF_PREFIX) or "").strip().strip("/"),
            }
            if target[CONF_CONNECTION_STRING]:
                target[CONF_ACCOUNT_URL] = target[CONF_CREDENTIAL] = None
            errors = self._azure_form_errors(target)
            if not errors:
                error, identity = await async_validate_azure(self.hass, target)
                if error is None:
                    default_title = "/".join(
                        part
                        for part in (
                            identity.split("/")[-1],
                            target[CONF_CONTAINER],
                            target[CONF_PREFIX],
                        )
                        if part
                    )
                    return await self._async_connection_done(
                        target,
                        user_input.get(CONF_NAME) or default_title,
                        f"{TARGET_AZURE}:{identity}/{target[CONF_CONTAINER]}/{target[CONF_PREFIX]}",
                    )
                errors = {"base": error}
            current = self._current = {**current, **target, CONF_NAME: user_input.get(CONF_NAME)}
        return self.async_show_form(
            step_id="azure_blob",
            data_schema=vol.Schema(
                {
                    vol.Optional(CONF_NAME, description=_suggested(current.get(CONF_NAME))): str,
                    vol.Optional(
                        CONF_CONNECTION_STRING,
                        description=_suggested(_masked(current.get(CONF_CONNECTION_STRING))),
                    ): PASSWORD,
                    vol.Optional(
                        CONF_ACCOUNT_URL, description=_suggested(current.get(CONF_ACCOUNT_URL))
                    ): URL,
                    vol.Optional(
                        CONF_CREDENTIAL,
                        description=_suggested(_masked(current.get(CONF_CREDENTIAL))),
                    ): PASSWORD,
                    vol.Required(
                        CONF_CONTAINER, default=current.get(CONF_CONTAINER, "pm-dvr")
                    ): str,
                    vol.Optional(
                        CONF_PREFIX, description=_suggested(current.get(CONF_PREFIX))
                    ): str,
                }
            ),
            errors=errors,
        )

    @staticmethod
    def _azure_form_errors(target: Mapping[str, Any]) -> dict[str, str]:
        """What is wrong before anything is sent to Azure."""
        if not target[CONF_CONNECTION_STRING]:
            if not target[CONF_ACCOUNT_URL]:
                return {"base": "azure_auth_required"}
            if not str(target[CONF_ACCOUNT_URL]).startswith(("https://", "http://")):
                return {CONF_ACCOUNT_URL: "invalid_account_url"}
            if not target[CONF_CREDENTIAL]:
                return {CONF_CREDENTIAL: "credential_required"}
        if not _CONTAINER.match(target[CONF_CONTAINER]):
            return {CONF_CONTAINER: "invalid_container"}
        return {}

    async def async_step_folder(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A folder: a mounted NAS share or USB disk that Home Assistant may write to."""
        current = self._current
        errors: dict[str, str] = {}
        if user_input is not None:
            path = Path(user_input[CONF_PATH].strip())
            errors = await self._async_folder_errors(path)
            if not errors:
                return await self._async_connection_done(
                    {CONF_TARGET_TYPE: TARGET_FOLDER, CONF_PATH: str(path)},
                    user_input.get(CONF_NAME) or str(path),
                    f"{TARGET_FOLDER}:{path}",
                )
            current = self._current = {**current, **user_input}
        return self.async_show_form(
            step_id="folder",
            data_schema=vol.Schema(
                {
                    vol.Optional(CONF_NAME, description=_suggested(current.get(CONF_NAME))): str,
                    vol.Required(CONF_PATH, default=current.get(CONF_PATH, "")): str,
                }
            ),
            errors=errors,
        )

    async def _async_folder_errors(self, path: Path) -> dict[str, str]:
        if not path.is_absolute():
            return {CONF_PATH: "path_not_absolute"}
        run = self.hass.async_add_executor_job
        if not await run(self.hass.config.is_allowed_path, str(path)):
            return {CONF_PATH: "path_not_allowed"}
        storage = Path(self._get_entry().data[CONF_STORAGE_PATH])
        if await run(_inside, path, storage):
            return {CONF_PATH: "path_in_storage"}
        error = await _async_check(FolderTarget(FolderConfig(path), run))
        return {CONF_PATH: error} if error else {}

    async def async_step_rclone(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """An rclone remote (`remote:path`, set up with `rclone config`)."""
        run = self.hass.async_add_executor_job
        binary = await run(rclone_binary)
        if binary is None:
            return self.async_abort(reason="rclone_not_installed")
        current = self._current
        errors: dict[str, str] = {}
        if user_input is not None:
            stored_remote = current.get(CONF_REMOTE)
            remote = _unmask(user_input[CONF_REMOTE], stored_remote) or ""
            config_file = (user_input.get(CONF_RCLONE_CONFIG) or "").strip() or None
            if not remote:
                errors = {CONF_REMOTE: "invalid_config"}
            elif config_file and not await run(os.path.isfile, config_file):
                errors = {CONF_RCLONE_CONFIG: "config_file_missing"}
            else:
                target = RcloneTarget(RcloneConfig(remote, binary, config_file), run)
                if error := await _async_check(target):
                    errors = {"base": error}
                else:
                    digest = hashlib.sha256(f"{remote}\n{config_file}".encode()).hexdigest()
                    return await self._async_connection_done(
                        {
                            CONF_TARGET_TYPE: TARGET_RCLONE,
                            CONF_REMOTE: remote,
                            CONF_RCLONE_CONFIG: config_file,
                        },
                        user_input.get(CONF_NAME) or rclone_title(remote),
                        f"{TARGET_RCLONE}:{digest[:24]}",
                    )
            current = self._current = {
                **current,
                CONF_NAME: user_input.get(CONF_NAME),
                CONF_REMOTE: remote,
                CONF_RCLONE_CONFIG: config_file,
            }
        remote_shown = current.get(CONF_REMOTE) or ""
        if remote_shown.startswith(":"):  # an inline remote may carry keys
            remote_shown = MASK
        return self.async_show_form(
            step_id="rclone",
            data_schema=vol.Schema(
                {
                    vol.Optional(CONF_NAME, description=_suggested(current.get(CONF_NAME))): str,
                    vol.Required(CONF_REMOTE, default=remote_shown): str,
                    vol.Optional(
                        CONF_RCLONE_CONFIG,
                        description=_suggested(current.get(CONF_RCLONE_CONFIG)),
                    ): str,
                }
            ),
            errors=errors,
        )

    async def _async_connection_done(
        self, target: dict[str, Any], title: str, unique_id: str
    ) -> SubentryFlowResult:
        """The target works: refuse a duplicate, then ask what to upload."""
        own = self._get_reconfigure_subentry().subentry_id if self._reconfiguring else None
        if any(
            subentry.subentry_type == SUBENTRY_TARGET
            and subentry.unique_id == unique_id
            and subentry.subentry_id != own
            for subentry in self._get_entry().subentries.values()
        ):
            return self.async_abort(reason="already_configured")
        self._target, self._title, self._unique_id = target, title.strip(), unique_id
        return await self.async_step_options()

    @property
    def _reconfiguring(self) -> bool:
        return self.source == SOURCE_RECONFIGURE

    async def async_step_options(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """What to upload (events, or recordings too), filters, and whether to delete locally."""
        if user_input is not None:
            data = {
                **self._target,
                CONF_UPLOAD: user_input[CONF_UPLOAD],
                CONF_CAMERAS: sorted(set(user_input.get(CONF_CAMERAS) or [])),
                CONF_LABELS: sorted(
                    {label.strip() for label in user_input.get(CONF_LABELS) or [] if label.strip()}
                ),
                CONF_DELETE_AFTER_UPLOAD: user_input[CONF_DELETE_AFTER_UPLOAD],
                CONF_RETRY_DAYS: int(user_input.get(CONF_RETRY_DAYS, DEFAULT_RETRY_DAYS)),
            }
            if self._reconfiguring:
                return self.async_update_and_abort(
                    self._get_entry(),
                    self._get_reconfigure_subentry(),
                    title=self._title,
                    unique_id=self._unique_id,
                    data=data,
                )
            return self.async_create_entry(title=self._title, data=data, unique_id=self._unique_id)
        current = self._current
        cameras = [
            selector.SelectOptionDict(value=subentry.data[CONF_SLUG], label=subentry.title)
            for subentry in self._get_entry().subentries.values()
            if subentry.subentry_type == SUBENTRY_CAMERA
        ]
        return self.async_show_form(
            step_id="options",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_UPLOAD, default=current.get(CONF_UPLOAD, UPLOAD_EVENTS)
                    ): selector.SelectSelector(
                        selector.SelectSelectorConfig(
                            options=UPLOAD_MODES, translation_key=CONF_UPLOAD
                        )
                    ),
                    vol.Optional(
                        CONF_CAMERAS, default=list(current.get(CONF_CAMERAS) or [])
                    ): selector.SelectSelector(
                        selector.SelectSelectorConfig(options=cameras, multiple=True)
                    ),
                    vol.Optional(
                        CONF_LABELS, default=list(current.get(CONF_LABELS) or [])
                    ): selector.TextSelector(selector.TextSelectorConfig(multiple=True)),
                    vol.Required(
                        CONF_DELETE_AFTER_UPLOAD,
                        default=current.get(CONF_DELETE_AFTER_UPLOAD, False),
                    ): bool,
                    vol.Required(
                        CONF_RETRY_DAYS,
                        default=current.get(CONF_RETRY_DAYS, DEFAULT_RETRY_DAYS),
                    ): RETRY_DAYS,
                }
            ),
        )


def _inside(path: Path, storage: Path) -> bool:
    """Whether path is the hub's storage or inside it (blocking: resolves links)."""
    resolved, root = path.resolve(), storage.resolve()
    return resolved == root or root in resolved.parents


class TargetReauthFlow(ConfigFlow):
    """The hub's reauth flow, for an Azure target whose key or SAS was refused."""

    _reauth_target_id = ""

    @callback
    def async_remove(self) -> None:
        """HA runs one reauth flow per entry: once this one is gone, the next refused target
        gets its turn (HA 2026 applies the new credentials while this flow still counts)."""
        if self.source != SOURCE_REAUTH:
            return
        entry = self.hass.config_entries.async_get_entry(self.context.get("entry_id", ""))
        if entry is not None and entry.state is ConfigEntryState.LOADED:
            sync = entry.runtime_data.sync
            if sync is not None:
                sync.async_offer_reauth(done=self._reauth_target_id)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Started by the sync coordinator with the target's subentry id."""
        self._reauth_target_id = str(entry_data.get(REAUTH_TARGET, ""))
        return await self.async_step_reauth_target()

    async def async_step_reauth_target(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new connection string, or a new key or SAS, and test it."""
        entry = self._get_reauth_entry()
        subentry = entry.subentries.get(self._reauth_target_id)
        if subentry is None or subentry.data.get(CONF_TARGET_TYPE) != TARGET_AZURE:
            return self.async_abort(reason="reauth_target_gone")
        field = (
            CONF_CONNECTION_STRING if subentry.data.get(CONF_CONNECTION_STRING) else CONF_CREDENTIAL
        )
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**subentry.data, field: user_input[field].strip()}
            error, _ = await async_validate_azure(self.hass, data)
            if error is None:
                self.hass.config_entries.async_update_subentry(entry, subentry, data=data)
                return self.async_abort(reason="reauth_successful")
            errors["base"] = error
        return self.async_show_form(
            step_id="reauth_target",
            data_schema=vol.Schema({vol.Required(field): PASSWORD}),
            errors=errors,
            description_placeholders={"target": subentry.title},
        )
