"""Constants of pm_dvr: config keys, defaults and limits."""

from __future__ import annotations

import logging
from typing import Final

from .core.capture import (
    MAX_LABEL_LENGTH as CORE_MAX_LABEL_LENGTH,
    MAX_WINDOW_SECONDS as CORE_MAX_WINDOW_SECONDS,
)

DOMAIN: Final = "pm_dvr"
LOGGER = logging.getLogger(__package__)
# Config entry version: 1.2 took the secrets out of the cameras' unique ids (async_migrate_entry).
ENTRY_VERSION: Final = 1
ENTRY_MINOR_VERSION: Final = 2

SUBENTRY_CAMERA: Final = "camera"

# Hub entry data and options.
CONF_STORAGE_PATH: Final = "storage_path"
CONF_SEGMENT_SECONDS: Final = "segment_seconds"
CONF_MAX_STORAGE_GB: Final = "max_storage_gb"
CONF_MAX_AGE_DAYS: Final = "max_age_days"
CONF_MQTT_TOPIC: Final = "mqtt_topic"
CONF_MAX_EVENT_STORAGE_GB: Final = "max_event_storage_gb"  # absent or None: a share, below
CONF_MAX_EVENT_AGE_DAYS: Final = "max_event_age_days"
CONF_MIN_FREE_GB: Final = "min_free_gb"  # absent or None: automatic (see RetentionConfig)

DEFAULT_STORAGE_FOLDER: Final = "pm_dvr"
DEFAULT_SEGMENT_SECONDS: Final = 10
MIN_SEGMENT_SECONDS: Final = 2
MAX_SEGMENT_SECONDS: Final = 300
DEFAULT_MAX_AGE_DAYS: Final = 0
DEFAULT_MQTT_TOPIC: Final = "pm_dvr/capture"
# The setup proposes quotas for recordings and events that take this share of free space together.
QUOTA_SHARE_OF_FREE: Final = 0.8
# The event quota, unless set: this share of the recordings quota.
EVENT_QUOTA_SHARE: Final = 0.2
DEFAULT_MAX_EVENT_AGE_DAYS: Final = 0
# Changing only these hub options is applied live, without restarting the cameras.
RETENTION_KEYS: Final = frozenset(
    {
        CONF_MAX_STORAGE_GB,
        CONF_MAX_AGE_DAYS,
        CONF_MAX_EVENT_STORAGE_GB,
        CONF_MAX_EVENT_AGE_DAYS,
        CONF_MIN_FREE_GB,
    }
)
ISSUE_LOW_DISK_SPACE: Final = "low_disk_space"
ISSUE_EVENTS_DELETED: Final = "events_deleted_for_space"

# Camera subentry data.
CONF_NAME: Final = "name"
CONF_STREAM_URL: Final = "stream_url"
CONF_DETECT_STREAM_URL: Final = "detect_stream_url"
CONF_RECORD: Final = "record"
CONF_AUDIO: Final = "audio"
CONF_PRE_SECONDS: Final = "pre_seconds"
CONF_POST_SECONDS: Final = "post_seconds"
CONF_SLUG: Final = "slug"
CONF_STREAM_INFO: Final = "stream_info"

AUDIO_AUTO: Final = "auto"
AUDIO_OFF: Final = "off"
AUDIO_MODES: Final = [AUDIO_AUTO, AUDIO_OFF]
DEFAULT_PRE_SECONDS: Final = 10
DEFAULT_POST_SECONDS: Final = 30
MAX_WINDOW_SECONDS: Final = int(CORE_MAX_WINDOW_SECONDS)

RECORDING_SWITCH_KEY: Final = "recording"
PERSISTENT_SWITCH_KEY: Final = "persistent_recording"
LAST_EVENT_SENSOR_KEY: Final = "last_event"
HUB_DEVICE_NAME: Final = "pm_dvr"  # the product name, the same in every language
MAX_LABEL_LENGTH: Final = CORE_MAX_LABEL_LENGTH
EVENT_PM_DVR: Final = "pm_dvr_event"


def signal_event(entry_id: str) -> str:
    """Dispatcher signal sent with an `EventInfo` whenever an event of the hub starts or changes."""
    return f"{DOMAIN}_event_{entry_id}"


# Motion detection (camera subentry data; read with .get: older subentries lack them).
CONF_MOTION: Final = "motion"
CONF_MOTION_THRESHOLD: Final = "motion_threshold"
CONF_MOTION_MIN_SIZE: Final = "motion_min_size"
CONF_MOTION_OFF_DELAY: Final = "motion_off_delay"
CONF_MOTION_ZONES: Final = "motion_zones"
CONF_MOTION_EVENTS: Final = "motion_events"
DEFAULT_MOTION_OFF_DELAY: Final = 30
MAX_MOTION_OFF_DELAY: Final = 3600
MAX_MOTION_MIN_SIZE: Final = 50.0
# Changing only these keeps the camera running (applied live; the Motion numbers persist them).
MOTION_LIVE_KEYS: Final = frozenset(
    {
        CONF_MOTION_THRESHOLD,
        CONF_MOTION_MIN_SIZE,
        CONF_MOTION_OFF_DELAY,
        CONF_MOTION_ZONES,
        CONF_MOTION_EVENTS,
    }
)
MOTION_SWITCH_KEY: Final = "motion_detection"

# Sync targets (subentries of type "target"; see sync.py and sync_flow.py).
SUBENTRY_TARGET: Final = "target"
EVENT_PM_DVR_UPLOAD: Final = "pm_dvr_upload"
CONF_TARGET_TYPE: Final = "target_type"
TARGET_AZURE: Final = "azure_blob"
TARGET_FOLDER: Final = "folder"
TARGET_RCLONE: Final = "rclone"
TARGET_TYPES: Final = [TARGET_AZURE, TARGET_FOLDER, TARGET_RCLONE]
CONF_CONNECTION_STRING: Final = "connection_string"
CONF_ACCOUNT_URL: Final = "account_url"
CONF_CREDENTIAL: Final = "credential"
CONF_CONTAINER: Final = "container"
CONF_PREFIX: Final = "prefix"
CONF_PATH: Final = "path"
CONF_REMOTE: Final = "remote"
CONF_RCLONE_CONFIG: Final = "rclone_config"
CONF_UPLOAD: Final = "upload"
UPLOAD_EVENTS: Final = "events"
UPLOAD_ALL: Final = "all"
UPLOAD_MODES: Final = [UPLOAD_EVENTS, UPLOAD_ALL]
CONF_CAMERAS: Final = "cameras"
CONF_LABELS: Final = "labels"
CONF_DELETE_AFTER_UPLOAD: Final = "delete_after_upload"
# Days a job may keep failing (from its first failure) before it moves to the failed uploads.
CONF_RETRY_DAYS: Final = "retry_days"
DEFAULT_RETRY_DAYS: Final = 7
MAX_RETRY_DAYS: Final = 365
TARGET_SECRET_KEYS: Final = frozenset({CONF_CONNECTION_STRING, CONF_CREDENTIAL})
