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
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from meander.clock import DEFAULT_MAX_AHEAD_SECONDS
from meander.config.limits import DAY, Bytes, Timeout, at_most
from meander.config.notifier import NotifierSettings
from meander.config.producer import ProducerSettings
from meander.config.service import ServiceSettings
from meander.config.stream import StreamConfig
from meander.exceptions import ConfigError

# A broker's address as Kafka clients take it: a host name, IPv4 or [IPv6] address, and a port
# (9092 when left out).
BOOTSTRAP_ADDRESS = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>[0-9]{1,5}))?")

__all__ = ["MIN_SIGNING_KEY_BYTES", "Settings", "load_settings"]

MIN_SIGNING_KEY_BYTES = 16

# The broker refuses these beyond its own limits, long after the check; refuse them here.
TransactionTimeout = Annotated[
    float,
    Field(gt=0, le=900),
    at_most(900, "the broker refuses longer transactions (transaction.max.timeout.ms, 15 min)"),
]
StateBytes = Annotated[
    int,
    Field(gt=0, le=100 * 2**20),
    at_most(100 * 2**20, "the broker takes no request above 100 MiB (socket.request.max.bytes)"),
]
ClockSkew = Annotated[
    float, Field(gt=0, le=DAY), at_most(DAY, "clocks a day apart are wrong, not skewed")
]


class Settings(BaseSettings):
    """Everything meander reads at start-up."""

    # No NaN or infinity anywhere (TOML has both): a NaN bound or threshold compares false
    # with everything and is silently ignored, an infinite timeout cannot be handed to a client.
    model_config = SettingsConfigDict(
        env_prefix="MEANDER_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    kafka_bootstrap: str | None = Field(
        default=None, description="host:port[,host:port]; unset runs the embedded in-process bus."
    )
    redis_url: str | None = Field(
        default=None, description="redis:// or rediss:// URL; unset runs the embedded store."
    )
    kafka_client: Literal["kafka-python", "confluent-kafka"] = Field(
        default="kafka-python",
        description="the Kafka client the bus runs on: kafka-python (pure Python, always "
        "installed) or confluent-kafka (librdkafka: a fraction of the CPU per event and a "
        "shorter latency tail; pip install 'meander[fast]')",
    )
    kafka_timeout_seconds: Timeout = 10.0
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once",
        description="exactly_once: each predictor batch's predictions, dead letters and input "
        "offsets go in one Kafka transaction, and every meander reader reads only committed "
        "records, so each event's champion prediction is read once across kills",
    )
    transaction_timeout_seconds: TransactionTimeout = Field(
        default=10.0,
        description="exactly_once: how long the broker keeps a transaction open; after a "
        "predictor is killed, readers of its output wait at most this long for its open "
        "transaction to be aborted",
    )
    redis_timeout_seconds: Timeout = 5.0
    client_id: str = "meander"
    instance_id: str | None = Field(
        default=None,
        min_length=1,
        description="a name for this process that its restarts keep and no other process has "
        "(a compose service, a StatefulSet pod): its consumer groups then take it back at once "
        "after a restart (Kafka static membership), instead of after the session time-out; a "
        "stopped process's partitions then wait for that time-out before they move",
    )
    max_event_bytes: Bytes = 1_000_000
    state_max_bytes: StateBytes = Field(
        default=64 * 2**20,
        description="the largest model or checkpoint kept in Kafka's meander.state topic (its "
        "max.message.bytes); the broker's socket.request.max.bytes (100 MiB) bounds it",
    )
    max_clock_skew_seconds: ClockSkew = Field(
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

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_addresses(cls, bootstrap: str | None) -> str | None:
        # A malformed address made every component wait for Kafka for good ("waiting for
        # kafka: no Kafka broker answered at localhost:abc"), as if the broker were down.
        if bootstrap is None:
            return None
        for address in (part.strip() for part in bootstrap.split(",")):
            found = BOOTSTRAP_ADDRESS.fullmatch(address)
            if found is None:
                raise ValueError(
                    f"{address[:60]!r} is not host:port (a port of 1-65535; an IPv6 host in "
                    "brackets, [::1]:9092); separate several with commas"
                )
            if found["port"] is not None and not 1 <= int(found["port"]) <= 65_535:
                raise ValueError(f"port {found['port']} of {address!r} is not 1-65535")
        return bootstrap

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must start with redis://, rediss:// or unix://, got {url[:20]!r}")
        return url

    @field_validator("model_signing_key")
    @classmethod
    def _key_long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        # Refused here, not when the first component starts to sign with it.
        size = 0 if key is None else len(key.get_secret_value().encode())
        if key is not None and size < MIN_SIGNING_KEY_BYTES:
            raise ValueError(
                f"the key has {size} bytes: use at least {MIN_SIGNING_KEY_BYTES} random bytes, "
                "e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return key

    @field_validator("kafka_client")
    @classmethod
    def _client_installed(cls, client: str) -> str:
        if client == "confluent-kafka":
            try:
                import confluent_kafka  # noqa: F401
            except ImportError:
                raise ValueError(
                    "confluent-kafka is not installed: pip install 'meander[fast]', or set "
                    'kafka_client = "kafka-python"'
                ) from None
        return client

    @field_validator("streams")
    @classmethod
    def _unique_names(cls, streams: list[StreamConfig]) -> list[StreamConfig]:
        names = [s.name for s in streams]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stream names must be unique; repeated: {', '.join(duplicates)}")
        return streams

    @model_validator(mode="after")
    def _producer_stream_is_configured(self) -> Settings:
        # Otherwise the check passed and `meander run producer` stopped at its start.
        target = self.producer.stream
        if target is not None and target not in {s.name for s in self.streams}:
            known = ", ".join(s.name for s in self.streams) or "none"
            raise ValueError(
                f"producer.stream {target!r} is not a configured stream (configured: {known})"
            )
        return self

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
    except UnicodeDecodeError as error:
        where = f"byte {error.start}"
        raise ConfigError(f"config file {path} is not UTF-8 text (as TOML is): {where}") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None
    except ValueError:  # Python reads no integer of more than 4,300 digits (int_max_str_digits)
        raise ConfigError(f"config file {path} holds an integer too long to read") from None


def _describe(error: ValidationError, path: str | Path | None) -> str:
    where = f"config file {path}" if path else "configuration"
    lines = [f"{where} is invalid ({error.error_count()} problem(s)):"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(root)"
        # A value from the environment wins over the file: say so, or the file is searched
        # for a key it does not hold.
        variable = "MEANDER_" + "__".join(str(part).upper() for part in problem["loc"])
        source = f" (set by {variable})" if variable in os.environ else ""
        lines.append(f"  {key}{source}: {problem['msg']}")
    return "\n".join(lines)
