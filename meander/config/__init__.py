"""meander's configuration: one settings object (:mod:`meander.config.settings`), with a
stream's (:mod:`meander.config.stream`, its sections in :mod:`meander.config.sections`), the
producer's (:mod:`meander.config.producer`), the notifier's (:mod:`meander.config.notifier`), the
HTTP service's (:mod:`meander.config.service`) and a stream's encoding
(:mod:`meander.config.encoding`) sections in modules of their own; the bounds on sizes and
durations are in :mod:`meander.config.limits`."""

from meander.config.encoding import EncodingSettings
from meander.config.notifier import NotifierSettings, WebhookSettings
from meander.config.producer import ProducerSettings
from meander.config.sections import (
    DriftSettings,
    Feature,
    LabelWindow,
    LearningSettings,
    PromotionSettings,
)
from meander.config.service import SCOPES, ApiKey, Scope, ServiceSettings
from meander.config.settings import Settings, load_settings
from meander.config.stream import STREAM_NAME, TASKS, StreamConfig, Task, known_task

__all__ = [
    "SCOPES",
    "STREAM_NAME",
    "TASKS",
    "ApiKey",
    "DriftSettings",
    "EncodingSettings",
    "Feature",
    "LabelWindow",
    "LearningSettings",
    "NotifierSettings",
    "ProducerSettings",
    "PromotionSettings",
    "Scope",
    "ServiceSettings",
    "Settings",
    "StreamConfig",
    "Task",
    "WebhookSettings",
    "known_task",
    "load_settings",
]
