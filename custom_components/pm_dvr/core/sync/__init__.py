"""Off-box sync of events and recordings: persistent queue, engine and Azure/folder/rclone targets.

No Home Assistant imports here: the glue injects the aiohttp session, the executor, the queue's
persistence and the callbacks.
"""

from .azure import AzureBlobConfig, AzureBlobTarget, AzureTuning, build_client, create_azure_target
from .base import RunInExecutor, SyncTarget, UploadResult, file_md5
from .engine import Backoff, JobResult, SyncEngine, TargetSpec, TargetStatus
from .errors import (
    LocalFileMissingError,
    RcloneNotInstalledError,
    SyncError,
    TargetAuthError,
    TargetConfigError,
    TargetNotWritableError,
    TargetUnreachableError,
    VerifyError,
    redact,
)
from .folder import FolderConfig, FolderTarget
from .queue import JsonFileStore, SyncQueue
from .rclone import RcloneConfig, RcloneTarget

__all__ = [
    "AzureBlobConfig",
    "AzureBlobTarget",
    "AzureTuning",
    "Backoff",
    "FolderConfig",
    "FolderTarget",
    "JobResult",
    "JsonFileStore",
    "LocalFileMissingError",
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
    "TargetUnreachableError",
    "UploadResult",
    "VerifyError",
    "build_client",
    "create_azure_target",
    "file_md5",
    "redact",
]
