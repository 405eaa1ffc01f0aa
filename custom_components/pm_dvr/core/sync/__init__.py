"""Off-box sync of events and recordings: persistent queue, engine and Azure/folder/rclone targets.

No Home Assistant imports here: the glue injects the aiohttp session, the executor, the queue's
file and the callbacks. Wiring, in outline:

    run = hass.async_add_executor_job
    queue = await SyncQueue.open(SqliteQueueStore(path), run_in_executor=run)
    target = await create_azure_target(config, async_get_clientsession(hass), run)
    engine = SyncEngine(storage_path, queue, [TargetSpec(subentry_id, target, ...)],
                        run_in_executor=run,
                        on_job_finished=..., on_queue_length=..., on_target_status=...)
    engine.start(lambda coro: entry.async_create_background_task(hass, coro, "pm_dvr sync"))
    await engine.enqueue_event(event_id)      # when an event is complete
    ...
    await engine.close()                      # on unload or HA stop: uploads cancelled and
    await queue.close()                       # awaited, targets closed, queue written
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
from .queue import IN_MEMORY_SQL, JobView, QueueStore, SqliteQueueStore, SyncQueue
from .rclone import RcloneConfig, RcloneTarget

__all__ = [
    "DEFAULT_TIMEOUT",
    "IN_MEMORY_SQL",
    "AzureBlobConfig",
    "AzureBlobTarget",
    "AzureTuning",
    "Backoff",
    "BlockingGuard",
    "FolderConfig",
    "FolderTarget",
    "JobResult",
    "JobView",
    "LocalFileMissingError",
    "Progress",
    "QueueStore",
    "RcloneConfig",
    "RcloneNotInstalledError",
    "RcloneTarget",
    "RunInExecutor",
    "SqliteQueueStore",
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
