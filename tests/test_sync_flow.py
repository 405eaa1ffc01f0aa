"""Sync target flows (Azure, folder, rclone), their reconfigure, and the Azure reauth, for real.

Azure flows talk to a real Azurite; rclone flows run Debian's rclone against local folders.
"""

from __future__ import annotations

from collections.abc import Iterator
import logging
from pathlib import Path
import shutil
from typing import Any

from azure.storage.blob.aio import BlobServiceClient
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pm_dvr import sync as sync_module
from custom_components.pm_dvr.const import (
    CONF_STORAGE_PATH,
    DOMAIN,
    SUBENTRY_TARGET,
)
from custom_components.pm_dvr.sync import REAUTH_TARGET
from custom_components.pm_dvr.sync_flow import MASK, rclone_title

from .conftest import camera_subentry, target_subentry
from .rig.azurite import ACCOUNT_KEY, Azurite

BAD_KEY = "QmFkS2V5" * 11  # base64, the length of an account key, but wrong
OPTIONS = {"upload": "events", "cameras": [], "labels": [], "delete_after_upload": False}


@pytest.fixture
def rclone_installed() -> None:
    """rclone comes from Debian (scripts/setup installs it): fail, never skip."""
    if shutil.which("rclone") is None:
        pytest.fail("rclone is not installed: run scripts/setup")


@pytest.fixture
def hub(hass: HomeAssistant, storage_path: Path) -> MockConfigEntry:
    """A hub (not set up: flows do not need it running) with one camera."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=str(storage_path),
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        subentries_data=[camera_subentry("Porch", "rtsp://127.0.0.1:1/cam", "porch")],
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def no_secrets_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever the flows log, no key reaches the log."""
    caplog.set_level(logging.DEBUG, logger="custom_components.pm_dvr")
    yield
    assert ACCOUNT_KEY not in caplog.text
    assert BAD_KEY not in caplog.text


async def start(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> FlowResult:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TARGET), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["azure_blob", "folder", "rclone"]
    return await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": kind}
    )


async def configure(hass: HomeAssistant, result: FlowResult, data: dict[str, Any]) -> FlowResult:
    return await hass.config_entries.subentries.async_configure(result["flow_id"], data)


async def reconfigure(hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str) -> FlowResult:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TARGET),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )


def only_subentry(entry: MockConfigEntry) -> Any:
    [subentry] = [s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_TARGET]
    return subentry


async def container_exists(azurite: Azurite, name: str) -> bool:
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        return bool(await service.get_container_client(name).exists())


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged")
async def test_azure_connection_string(
    hass: HomeAssistant, hub: MockConfigEntry, azurite: Azurite
) -> None:
    """The container is created by the probe; the key is stored but never in the title."""
    result = await start(hass, hub, "azure_blob")
    assert result["step_id"] == "azure_blob"
    result = await configure(
        hass,
        result,
        {
            "connection_string": azurite.connection_string,
            "container": "flow-cs",
            "prefix": "/house/dvr/",
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "options"
    assert await container_exists(azurite, "flow-cs")
    result = await configure(
        hass,
        result,
        {"upload": "all", "cameras": ["porch"], "labels": [" person ", "", "car"]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = only_subentry(hub)
    assert subentry.title == "devstoreaccount1/flow-cs/house/dvr"
    assert ACCOUNT_KEY not in subentry.title
    assert dict(subentry.data) == {
        "target_type": "azure_blob",
        "connection_string": azurite.connection_string,
        "account_url": None,
        "credential": None,
        "container": "flow-cs",
        "prefix": "house/dvr",
        "upload": "all",
        "cameras": ["porch"],
        "labels": ["car", "person"],
        "delete_after_upload": False,
        "retry_days": 7,
    }
    assert ACCOUNT_KEY not in str(subentry.unique_id)

    # The same account, container and prefix again: refused.
    result = await start(hass, hub, "azure_blob")
    result = await configure(
        hass,
        result,
        {
            "connection_string": azurite.connection_string,
            "container": "flow-cs",
            "prefix": "house/dvr",
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged")
async def test_azure_account_url_and_reconfigure(
    hass: HomeAssistant, hub: MockConfigEntry, azurite: Azurite
) -> None:
    """Account URL + key; reconfigure shows the key masked and keeps it when left masked."""
    result = await start(hass, hub, "azure_blob")
    result = await configure(
        hass,
        result,
        {
            "name": "Cloud",
            "account_url": azurite.blob_endpoint,
            "credential": ACCOUNT_KEY,
            "container": "flow-key",
        },
    )
    result = await configure(hass, result, {"delete_after_upload": True, "retry_days": 3})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = only_subentry(hub)
    assert subentry.title == "Cloud"
    assert subentry.data["credential"] == ACCOUNT_KEY
    assert subentry.data["delete_after_upload"] is True
    assert subentry.data["retry_days"] == 3

    result = await reconfigure(hass, hub, subentry.subentry_id)
    assert result["step_id"] == "azure_blob"
    suggested = {str(key): key.description for key in result["data_schema"].schema}
    assert suggested["credential"] == {"suggested_value": MASK}
    assert suggested["account_url"] == {"suggested_value": azurite.blob_endpoint}
    result = await configure(
        hass,
        result,
        {
            "name": "Cloud 2",
            "account_url": azurite.blob_endpoint,
            "credential": MASK,
            "container": "flow-key2",
        },
    )
    assert result["step_id"] == "options"
    schema = {str(key): key.default() for key in result["data_schema"].schema if key.default}
    assert schema["delete_after_upload"] is True
    assert schema["retry_days"] == 3
    result = await configure(
        hass, result, {"upload": "events", "delete_after_upload": False, "retry_days": 30}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    subentry = only_subentry(hub)
    assert subentry.title == "Cloud 2"
    assert subentry.data["credential"] == ACCOUNT_KEY
    assert subentry.data["container"] == "flow-key2"
    assert subentry.data["delete_after_upload"] is False
    assert subentry.data["retry_days"] == 30


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged")
@pytest.mark.parametrize(
    ("form", "errors"),
    [
        ({"container": "pm-dvr"}, {"base": "azure_auth_required"}),
        (
            {"account_url": "ftp://x", "credential": "k", "container": "pm-dvr"},
            {"account_url": "invalid_account_url"},
        ),
        ({"account_url": "ENDPOINT", "container": "pm-dvr"}, {"credential": "credential_required"}),
        ({"connection_string": "GOOD", "container": "A"}, {"container": "invalid_container"}),
        ({"connection_string": "GOOD", "container": "a--b"}, {"container": "invalid_container"}),
        ({"connection_string": "BAD", "container": "pm-dvr"}, {"base": "auth_failed"}),
        (
            {"account_url": "ENDPOINT", "credential": BAD_KEY, "container": "pm-dvr"},
            {"base": "auth_failed"},
        ),
        (
            {"connection_string": f"AccountKey={BAD_KEY};nonsense", "container": "pm-dvr"},
            {"base": "invalid_config"},
        ),
        (
            {
                "connection_string": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                f"AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;",
                "container": "pm-dvr",
            },
            {"base": "unreachable"},
        ),
    ],
)
async def test_azure_errors(
    hass: HomeAssistant,
    hub: MockConfigEntry,
    azurite: Azurite,
    form: dict[str, str],
    errors: dict[str, str],
) -> None:
    """Each mistake is shown on the form (secrets masked), and the flow recovers once fixed."""
    replace = {
        "GOOD": azurite.connection_string,
        "BAD": azurite.connection_string_with_key(BAD_KEY),
        "ENDPOINT": azurite.blob_endpoint,
    }
    form = {key: replace.get(value, value) for key, value in form.items()}
    result = await start(hass, hub, "azure_blob")
    result = await configure(hass, result, form)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "azure_blob"
    assert result["errors"] == errors
    suggested = {str(key): key.description for key in result["data_schema"].schema}
    for field in ("connection_string", "credential"):
        if form.get(field):
            assert suggested[field] == {"suggested_value": MASK}
    # A masked secret that was typed before is kept; a refused one is typed again.
    typed_good = form.get("connection_string") == replace["GOOD"]
    fixed = {
        "connection_string": MASK if typed_good else azurite.connection_string,
        "container": "flow-fixed",
    }
    result = await configure(hass, result, fixed)
    assert result["step_id"] == "options"


@pytest.mark.usefixtures("no_secrets_logged")
async def test_folder_flow_and_reconfigure(
    hass: HomeAssistant, hub: MockConfigEntry, tmp_path: Path
) -> None:
    """A folder HA allows, outside the storage, that takes a write."""
    nas = tmp_path / "nas"
    result = await start(hass, hub, "folder")
    assert result["step_id"] == "folder"
    result = await configure(hass, result, {"path": f" {nas} "})
    assert result["step_id"] == "options"
    result = await configure(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = only_subentry(hub)
    assert subentry.title == str(nas)
    assert subentry.data["path"] == str(nas)
    assert subentry.data["upload"] == "events"
    assert nas.is_dir()
    assert not list(nas.iterdir())  # the probe file is gone

    other = tmp_path / "nas2"
    result = await reconfigure(hass, hub, subentry.subentry_id)
    assert result["data_schema"]({})["path"] == str(nas)
    result = await configure(hass, result, {"name": "NAS", "path": str(other)})
    result = await configure(hass, result, {"upload": "events", "delete_after_upload": True})
    assert result["reason"] == "reconfigure_successful"
    subentry = only_subentry(hub)
    assert (subentry.title, subentry.data["path"]) == ("NAS", str(other))

    result = await start(hass, hub, "folder")
    result = await configure(hass, result, {"path": str(other)})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("relative/nas", "path_not_absolute"),
        ("/etc/pm_dvr", "path_not_allowed"),
        ("STORAGE/sub", "path_in_storage"),
        ("FILE/sub", "unreachable"),
    ],
)
async def test_folder_errors(
    hass: HomeAssistant, hub: MockConfigEntry, tmp_path: Path, path: str, error: str
) -> None:
    """Bad folders are refused with the reason; the flow recovers."""
    storage_path = Path(hub.data[CONF_STORAGE_PATH])
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    path = path.replace("STORAGE", str(storage_path)).replace("FILE", str(blocker))
    result = await start(hass, hub, "folder")
    result = await configure(hass, result, {"path": path})
    assert result["errors"] == {"path": error}
    result = await configure(hass, result, {"path": str(tmp_path / "ok")})
    assert result["step_id"] == "options"


def rclone_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "rclone.conf"
    conf.write_text("[local]\ntype = local\n")
    return conf


@pytest.mark.usefixtures("rclone_installed", "no_secrets_logged")
async def test_rclone_flow_and_reconfigure(
    hass: HomeAssistant, hub: MockConfigEntry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A named remote is listed (and its path created) before it is saved."""
    conf = rclone_conf(tmp_path)
    dest = tmp_path / "remote"
    result = await start(hass, hub, "rclone")
    assert result["step_id"] == "rclone"
    result = await configure(
        hass, result, {"remote": f"local:{dest}", "rclone_config": f" {conf} "}
    )
    assert result["step_id"] == "options"
    result = await configure(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = only_subentry(hub)
    assert subentry.title == f"local:{dest}"
    assert subentry.data["remote"] == f"local:{dest}"
    assert subentry.data["rclone_config"] == str(conf)
    assert dest.is_dir()

    # An inline remote may carry keys: masked in the title and in the reconfigure form.
    inline = f":local,nounc=true,key=s3cr3tvalue:{tmp_path / 'inline'}"
    result = await reconfigure(hass, hub, subentry.subentry_id)
    assert result["data_schema"]({})["remote"] == f"local:{dest}"
    result = await configure(hass, result, {"remote": inline})
    result = await configure(hass, result, {})
    assert result["reason"] == "reconfigure_successful"
    subentry = only_subentry(hub)
    assert subentry.title == ":local"
    assert subentry.data["remote"] == inline
    assert subentry.data["rclone_config"] is None
    result = await reconfigure(hass, hub, subentry.subentry_id)
    assert result["data_schema"]({})["remote"] == MASK
    result = await configure(hass, result, {"name": "Inline", "remote": MASK})
    result = await configure(hass, result, {})
    assert result["reason"] == "reconfigure_successful"
    assert only_subentry(hub).data["remote"] == inline
    assert only_subentry(hub).title == "Inline"
    assert "s3cr3tvalue" not in caplog.text


@pytest.mark.usefixtures("rclone_installed")
async def test_rclone_errors(hass: HomeAssistant, hub: MockConfigEntry, tmp_path: Path) -> None:
    """Empty remote, missing config file, a remote rclone does not know."""
    conf = rclone_conf(tmp_path)
    result = await start(hass, hub, "rclone")
    result = await configure(hass, result, {"remote": "   "})
    assert result["errors"] == {"remote": "invalid_config"}
    result = await configure(
        hass, result, {"remote": "local:/x", "rclone_config": str(tmp_path / "nope.conf")}
    )
    assert result["errors"] == {"rclone_config": "config_file_missing"}
    result = await configure(hass, result, {"remote": "nosuch:x", "rclone_config": str(conf)})
    assert result["errors"] == {"base": "request_failed"}
    result = await configure(
        hass, result, {"remote": f"local:{tmp_path / 'r'}", "rclone_config": str(conf)}
    )
    assert result["step_id"] == "options"


async def test_rclone_not_installed(
    hass: HomeAssistant, hub: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the rclone binary the flow says so at once."""
    monkeypatch.setattr(sync_module, "RCLONE_BINARY", "pm_dvr-no-such-rclone")
    result = await start(hass, hub, "rclone")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "rclone_not_installed"


def test_rclone_title() -> None:
    assert rclone_title("nas:backups/dvr") == "nas:backups/dvr"
    assert rclone_title(":azureblob,account=x,key=secret:cont") == ":azureblob"
    assert rclone_title(":local:/tmp/x") == ":local"


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged")
@pytest.mark.parametrize("mode", ["connection_string", "credential"])
async def test_reauth(hass: HomeAssistant, storage_path: Path, azurite: Azurite, mode: str) -> None:
    """The hub's reauth flow asks for the refused secret of one target and tests it."""
    if mode == "connection_string":
        data = {
            "connection_string": azurite.connection_string_with_key(BAD_KEY),
            "account_url": None,
            "credential": None,
        }
        good = azurite.connection_string
    else:
        data = {"connection_string": None, "account_url": azurite.blob_endpoint}
        data["credential"] = BAD_KEY
        good = ACCOUNT_KEY
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=str(storage_path),
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        subentries_data=[
            target_subentry(
                "t_azure",
                "Cloud",
                {"target_type": "azure_blob", "container": "reauth", "prefix": "", **data},
            )
        ],
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass, data={REAUTH_TARGET: "t_azure"})
    assert result["step_id"] == "reauth_target"
    assert result["description_placeholders"]["target"] == "Cloud"
    assert list(result["data_schema"].schema) == [mode]
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {mode: BAD_KEY})
    assert result["errors"] == {"base": "auth_failed" if mode == "credential" else "invalid_config"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {mode: good})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.subentries["t_azure"].data[mode] == good


async def test_reauth_target_gone(hass: HomeAssistant, hub: MockConfigEntry) -> None:
    """A reauth for a target removed meanwhile (or not an Azure one) ends at once."""
    result = await hub.start_reauth_flow(hass, data={REAUTH_TARGET: "nope"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_target_gone"
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert not [flow for flow in flows if flow["context"]["source"] == SOURCE_REAUTH]
