"""Off-box sync of events and recordings: persistent queue, engine and Azure/folder/rclone targets.

No Home Assistant imports here: the glue injects the aiohttp session, the executor, the queue's
persistence and the callbacks. Wiring, in outline:

    store = Store(hass, 1, f"pm_dvr.sync_queue.{entry.entry_id}")
    items = ((await store.async_load()) or {}).get("items", [])
    queue = SyncQueue(items, lambda jobs: store.async_delay_save(lambda: {"items": jobs}, 1))
    target = await create_azure_target(config, async_get_clientsession(hass),
                                       hass.async_add_executor_job)
    engine = SyncEngine(storage_path, queue, [TargetSpec(subentry_id, target, ...)],
                        run_in_executor=hass.async_add_executor_job,
                        on_job_finished=..., on_queue_length=..., on_target_status=...)
    engine.start(lambda coro: entry.async_create_background_task(hass, coro, "pm_dvr sync"))
    await engine.enqueue_event(event_id)      # when an event is complete
    ...
    await engine.close()                      # on unload (stops, then closes the targets)
"""

from .azure import AzureBlobConfig, AzureBlobTarget, AzureTuning, build_client, create_azure_target
from .base import (
    DEFAULT_TIMEOUT,
    BlockingGuard,
    Progress,
    RunInExecutor,
    SyncTarget,
    UploadResult,
    file_md5,
)
from .engine import Backoff, JobResult, SyncEngine, TargetSpec, TargetStatus
from .errors import (
    LocalFileMissingError,
    RcloneNotInstalledError,
    SyncError,
    TargetAuthError,
    TargetConfigError,
    TargetNotWritableError,
    TargetTimeoutError,
    TargetUnreachableError,
    VerifyError,
    redact,
)
from .folder import FolderConfig, FolderTarget
from .queue import JsonFileStore, SyncQueue
from .rclone import RcloneConfig, RcloneTarget

__all__ = [
    "DEFAULT_TIMEOUT",
    "AzureBlobConfig",
    "AzureBlobTarget",
    "AzureTuning",
    "Backoff",
    "BlockingGuard",
    "FolderConfig",
    "FolderTarget",
    "JobResult",
    "JsonFileStore",
    "LocalFileMissingError",
    "Progress",
    "RcloneConfig",
    "RcloneNotInstalledError",
    "RcloneTarget",
    "RunInExecutor",
    "SyncEngine",
    "SyncError",
    "SyncQueue",
    "SyncTarget",
    "TargetAuthError",
    "TargetConfigError",
    "TargetNotWritableError",
    "TargetSpec",
    "TargetStatus",
    "TargetTimeoutError",
    "TargetUnreachableError",
    "UploadResult",
    "VerifyError",
    "build_client",
    "create_azure_target",
    "file_md5",
    "redact",
]
