"""meander's configuration: one settings object (:mod:`meander.config.settings`), with a
stream's (:mod:`meander.config.stream`), the producer's (:mod:`meander.config.producer`), the
notifier's (:mod:`meander.config.notifier`), the HTTP service's (:mod:`meander.config.service`)
and a stream's encoding (:mod:`meander.config.encoding`) sections in modules of their own."""

from meander.config.encoding import EncodingSettings
from meander.config.notifier import NotifierSettings, WebhookSettings
from meander.config.producer import ProducerSettings
from meander.config.service import SCOPES, ApiKey, Scope, ServiceSettings
from meander.config.settings import Settings, load_settings
from meander.config.stream import (
    STREAM_NAME,
    TASKS,
    DriftSettings,
    Feature,
    LabelWindow,
    LearningSettings,
    PromotionSettings,
    StreamConfig,
    Task,
    known_task,
)

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
