"""meander's one settings object: connections, knobs and the streams it runs.

Settings come from, highest priority first: ``MEANDER_*`` environment variables (nested keys
joined by ``__``), then a TOML file (``--config`` or ``MEANDER_CONFIG``), then defaults that work
on a laptop: with no Kafka and no Redis configured, the embedded bus and store are used.

>>> settings = Settings(streams=[{"name": "fraud", "task": "binary",
...                               "features": {"amount": "numeric", "country": "categorical"}}])
>>> settings.stream("fraud").features["country"].type
'categorical'
>>> settings.uses_kafka
False
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from meander.clock import DEFAULT_MAX_AHEAD_SECONDS
from meander.config.encoding import EncodingSettings
from meander.config.notifier import NotifierSettings, WebhookSettings
from meander.config.search_space import default_candidates, default_model
from meander.config.service import ServiceSettings
from meander.exceptions import ConfigError

__all__ = [
    "DriftSettings",
    "Feature",
    "LabelWindow",
    "LearningSettings",
    "NotifierSettings",
    "ProducerSettings",
    "PromotionSettings",
    "Settings",
    "StreamConfig",
    "WebhookSettings",
    "load_settings",
]

Task = Literal["binary", "multiclass", "regression"]

# Stream names become topic names (`S.events`), so they follow Kafka's topic alphabet.
STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

BINARY_CLASSES: frozenset[bool | int | str] = frozenset({False, True})


class _Section(BaseModel):
    # A misspelt key is an error, never a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Section):
    """One input feature of a stream's schema."""

    type: Literal["numeric", "categorical", "boolean"] = "numeric"
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str | int] | None = Field(
        default=None, description="Allowed values of a categorical feature; None allows any."
    )

    @model_validator(mode="after")
    def _bounds_make_sense(self) -> Feature:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        if self.categories is not None and self.type != "categorical":
            raise ValueError("categories apply to categorical features only")
        return self


class DriftSettings(_Section):
    """How drift is detected: River detector specs for the error stream and for features."""

    concept_detector: str = "drift.ADWIN"
    data_detector: str = Field(
        default="drift.ADWIN", description="fed each numeric feature value; empty disables it"
    )
    data_window: PositiveInt = Field(
        default=1_000, description="events per monitor window; the first is the reference"
    )
    ks_significance: float = Field(
        default=1e-4,
        gt=0.0,
        lt=1.0,
        description="p-value below which a numeric feature's window differs from its reference "
        "(two-sample Kolmogorov-Smirnov); small because every feature is tested every window",
    )
    psi_threshold: PositiveFloat = Field(
        default=0.2,
        description="population stability index above which a categorical or boolean "
        "feature's window differs from its reference",
    )
    missing_rate_threshold: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="share of a window's events missing a feature above which it is reported",
    )
    violation_rate_threshold: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="share of a window's events that break the schema above which it is reported",
    )


class PromotionSettings(_Section):
    """The validation gate a challenger passes before it replaces the champion."""

    min_samples: PositiveInt = Field(
        default=100,
        description="shared events before a race is judged; a race that has not won after 10 "
        "times as many is rejected",
    )
    patience: PositiveInt = Field(
        default=300,
        description="events a challenger races before it may be rejected as worse: a model "
        "that starts after a drift starts behind and learns",
    )
    min_gain: float = Field(default=0.0, ge=0.0)
    significance: float = Field(default=0.05, gt=0.0, lt=1.0)
    rollback_window: PositiveInt = 1_000
    rollback_tolerance: float = Field(default=0.02, ge=0.0)


class LearningSettings(_Section):
    """How the learner keeps its state and shares its models, and how the trainer warm-starts."""

    checkpoint_every: PositiveInt = Field(
        default=2_000, description="labels learned between two checkpoints"
    )
    checkpoint_seconds: PositiveFloat = Field(
        default=1.0,
        description="longest time between two checkpoints while labels arrive (a checkpoint "
        "also follows any decision, and never takes over a tenth of the learner's time)",
    )
    publish_every: PositiveInt = Field(
        default=500, description="labels learned between two model snapshots for predictors"
    )
    replay_window: PositiveInt = Field(
        default=1_000,
        description="most recent labelled events a challenger is warm-started on; the first "
        "tuning starts when the champion has learned this many",
    )
    max_challengers: PositiveInt = 4
    tune_first: bool = Field(
        default=True,
        description=(
            "race the candidates against the first champion once it has learned replay_window "
            "labels, without waiting for a drift"
        ),
    )
    lease_seconds: PositiveFloat = Field(
        default=5.0,
        description="how long a learner's claim on a stream outlives its last renewal (a thread "
        "renews it every second): how soon a standby takes over from a dead learner",
    )


class LabelWindow(_Section):
    """How long a prediction waits for its label before it is counted as never labelled."""

    ttl_seconds: PositiveFloat = 3_600.0
    max_pending: PositiveInt = 100_000


class StreamConfig(_Section):
    """A named data source: one schema, one task, one model lineage."""

    name: str
    task: Task
    features: dict[str, Feature] = Field(min_length=1)
    classes: list[bool | int | str] | None = Field(
        default=None,
        description="the labels a classification stream accepts; None: false and true for "
        "binary, any bool, int or string for multiclass",
    )
    model: str = ""
    candidates: list[str] = Field(default_factory=list)
    drift: DriftSettings = DriftSettings()
    promotion: PromotionSettings = PromotionSettings()
    label_window: LabelWindow = LabelWindow()
    learning: LearningSettings = LearningSettings()
    encoding: EncodingSettings = EncodingSettings()
    partitions: PositiveInt = 3

    @field_validator("name")
    @classmethod
    def _name_is_a_topic_prefix(cls, name: str) -> str:
        if not STREAM_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a valid stream name: use 1-100 letters, digits, '_' or '-'"
            )
        return name

    @field_validator("features", mode="before")
    @classmethod
    def _expand_shorthand(cls, features: Any) -> Any:
        # `amount = "numeric"` is shorthand for `amount = {type = "numeric"}`.
        if isinstance(features, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in features.items()}
        return features

    @model_validator(mode="after")
    def _encoding_fields_are_not_features(self) -> StreamConfig:
        for setting in ("id_field", "time_field"):
            field = getattr(self.encoding, setting)
            if field in self.features:
                raise ValueError(
                    f"encoding.{setting} {field!r} is also a feature: a flat event's {setting} "
                    "is not one of its features; rename one of them"
                )
        return self

    @model_validator(mode="after")
    def _default_model(self) -> StreamConfig:
        # No model configured: a linear first champion and, unless candidates are given (an
        # empty list is an answer), the default search space to race it (see search_space).
        if not self.model:
            kinds = {name: feature.type for name, feature in self.features.items()}
            object.__setattr__(self, "model", default_model(self.task, kinds))
            if "candidates" not in self.model_fields_set:
                object.__setattr__(self, "candidates", default_candidates(self.task, kinds))
        return self

    @model_validator(mode="after")
    def _classes_fit_the_task(self) -> StreamConfig:
        if self.classes is None:
            return self
        if self.task == "regression":
            raise ValueError("classes apply to binary and multiclass streams only")
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError(f"classes must be at least two distinct labels, got {self.classes}")
        if self.task == "binary" and len(self.classes) != 2:
            raise ValueError(f"a binary stream has two classes, got {len(self.classes)}")
        return self

    @property
    def label_classes(self) -> frozenset[bool | int | str] | None:
        """The labels the stream accepts; None when any label of the task's type is."""
        if self.classes is not None:
            return frozenset(self.classes)
        return BINARY_CLASSES if self.task == "binary" else None


class ProducerSettings(_Section):
    """What ``meander run producer`` publishes: a synthetic drifting stream or a file replay."""

    stream: str | None = Field(default=None, description="target stream; None is the first one")
    source: str = Field(
        default="agrawal", description="a synthetic generator name, or a .csv/.parquet path"
    )
    target: str | None = Field(default=None, description="label column of a replayed file")
    id_column: str | None = Field(
        default=None, description="event id column of a replayed file; None numbers the rows"
    )
    time_column: str | None = Field(
        default=None, description="event time column of a replayed file (ISO 8601 or Unix s)"
    )
    events: NonNegativeInt = Field(default=0, description="how many to publish; 0 never stops")
    rate: PositiveFloat | None = Field(default=None, description="events per second, or no limit")
    batch: PositiveInt = Field(default=500, description="events published per step")
    drift: Literal["abrupt", "gradual", "incremental", "recurring"] = "abrupt"
    drift_every: PositiveInt = 10_000
    drift_width: PositiveInt = Field(
        default=1_000, description="events a gradual drift lasts; at most drift_every"
    )
    label_delay: NonNegativeInt = Field(default=0, description="events between event and label")
    label_delay_max: NonNegativeInt | None = Field(
        default=None, description="when set, each delay is uniform in [label_delay, this]"
    )
    label_loss: float = Field(default=0.0, ge=0.0, lt=1.0, description="share never labelled")
    seed: int = 42
    progress: bool = Field(default=True, description="a progress bar when stderr is a terminal")

    @model_validator(mode="after")
    def _consistent(self) -> ProducerSettings:
        if self.label_delay_max is not None and self.label_delay_max < self.label_delay:
            raise ValueError(
                f"label_delay_max ({self.label_delay_max}) is below label_delay "
                f"({self.label_delay}); raise it or unset it for a fixed delay"
            )
        if self.drift == "gradual" and self.drift_width > self.drift_every:
            raise ValueError(
                f"drift_width ({self.drift_width}) is above drift_every ({self.drift_every}): "
                "a gradual drift must end before the next one starts"
            )
        return self


class Settings(BaseSettings):
    """Everything meander reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="MEANDER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka_bootstrap: str | None = Field(
        default=None, description="host:port[,host:port]; unset runs the embedded in-process bus."
    )
    redis_url: str | None = Field(
        default=None, description="redis:// or rediss:// URL; unset runs the embedded store."
    )
    kafka_timeout_seconds: PositiveFloat = 10.0
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once",
        description="exactly_once: each predictor batch's predictions, dead letters and input "
        "offsets go in one Kafka transaction, and every meander reader reads only committed "
        "records, so each event's champion prediction is read once across kills",
    )
    transaction_timeout_seconds: PositiveFloat = Field(
        default=10.0,
        description="exactly_once: how long the broker keeps a transaction open; after a "
        "predictor is killed, readers of its output wait at most this long for its open "
        "transaction to be aborted",
    )
    redis_timeout_seconds: PositiveFloat = 5.0
    client_id: str = "meander"
    instance_id: str | None = Field(
        default=None,
        min_length=1,
        description="a name for this process that its restarts keep and no other process has "
        "(a compose service, a StatefulSet pod): its consumer groups then take it back at once "
        "after a restart (Kafka static membership), instead of after the session time-out; a "
        "stopped process's partitions then wait for that time-out before they move",
    )
    max_event_bytes: PositiveInt = 1_000_000
    state_max_bytes: PositiveInt = Field(
        default=64 * 2**20,
        description="the largest model or checkpoint kept in Kafka's meander.state topic (its "
        "max.message.bytes); the broker's socket.request.max.bytes (100 MiB) bounds it",
    )
    max_clock_skew_seconds: PositiveFloat = Field(
        default=DEFAULT_MAX_AHEAD_SECONDS,
        description="how far ahead of the clock an event's time or a record's timestamp may be; "
        "keep it under the broker's log.message.timestamp.after.max.ms (1 h by default)",
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object per line; text: a line for people"
    )
    metrics_port: int = Field(
        default=9400,
        ge=0,
        le=65535,
        description="where `meander run` serves Prometheus metrics (/metrics); 0 serves none",
    )
    model_signing_key: SecretStr | None = Field(
        default=None,
        description="signs model blobs in the registry; required with Redis, random when embedded",
    )
    streams: list[StreamConfig] = Field(default_factory=list)
    producer: ProducerSettings = ProducerSettings()
    notifier: NotifierSettings = NotifierSettings()
    service: ServiceSettings = ServiceSettings()

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must start with redis://, rediss:// or unix://, got {url[:20]!r}")
        return url

    @field_validator("streams")
    @classmethod
    def _unique_names(cls, streams: list[StreamConfig]) -> list[StreamConfig]:
        names = [s.name for s in streams]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stream names must be unique; repeated: {', '.join(duplicates)}")
        return streams

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init arguments; the environment overrides it.
        return env_settings, init_settings, file_secret_settings

    @property
    def uses_kafka(self) -> bool:
        return self.kafka_bootstrap is not None

    @property
    def uses_redis(self) -> bool:
        return self.redis_url is not None

    def stream(self, name: str) -> StreamConfig:
        """The stream called ``name``; a ConfigError lists the known ones otherwise."""
        for stream in self.streams:
            if stream.name == name:
                return stream
        known = ", ".join(s.name for s in self.streams) or "none"
        raise ConfigError(f"unknown stream {name!r}; configured streams: {known}")


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from ``path`` (or ``MEANDER_CONFIG``), the environment and ``overrides``.

    Raises ConfigError naming the file, the key and the reason when anything is wrong.
    """
    _refuse_unknown_environment()
    path = path or os.environ.get("MEANDER_CONFIG")
    values = _read_toml(Path(path)) if path else {}
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as error:
        raise ConfigError(_describe(error, path)) from None
    except SettingsError as error:
        raise ConfigError(f"invalid MEANDER_* environment variable: {error}") from None


def _refuse_unknown_environment() -> None:
    # pydantic-settings ignores MEANDER_* variables it does not know: a typo would do nothing.
    known = {f"MEANDER_{name.upper()}" for name in Settings.model_fields}
    known |= {"MEANDER_CONFIG", "MEANDER_CACHE_DIR"}  # read before settings exist
    unknown = sorted(
        name
        for name in os.environ
        if name.upper().startswith("MEANDER_") and name.upper().split("__")[0] not in known
    )
    if unknown:
        raise ConfigError(
            f"unknown environment variable(s) {', '.join(unknown)}: meander reads only "
            f"{', '.join(sorted(known))}"
        )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


def _describe(error: ValidationError, path: str | Path | None) -> str:
    where = f"config file {path}" if path else "configuration"
    lines = [f"{where} is invalid ({error.error_count()} problem(s)):"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(root)"
        lines.append(f"  {key}: {problem['msg']}")
    return "\n".join(lines)
