"""The one exception root of meander, and the errors every package shares.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "BusUnavailable",
    "ConfigError",
    "ContractError",
    "InvalidTimestamp",
    "LeaseLost",
    "MeanderError",
    "MessageTooLarge",
    "ModelTampered",
    "RegistryError",
    "SpecError",
    "StoreNotReady",
    "StoreUnavailable",
]


class MeanderError(Exception):
    """Root of every error meander raises on purpose."""


class ConfigError(MeanderError):
    """The configuration is invalid; the message names the key and the reason."""


class ContractError(MeanderError):
    """A message does not follow meander's event contracts (CloudEvents 1.0, JSON payload)."""


class BusError(MeanderError):
    """The event bus refused or failed an operation."""


class BusUnavailable(BusError):
    """The broker did not answer within the configured time."""


class MessageTooLarge(BusError):
    """A record is larger than the bus accepts."""


class InvalidTimestamp(BusError):
    """A record's timestamp is one the broker would refuse; nothing of its batch was sent."""


class StoreUnavailable(MeanderError):
    """The store (Redis) did not answer within the configured time."""


class StoreNotReady(MeanderError):
    """The store lost its data and is not restored from Kafka yet; the write was refused."""


class SpecError(ConfigError):
    """A model or detector spec names something that is not an allowed River class or argument."""


class LeaseLost(MeanderError):
    """A write was refused: another process holds the lease now (it took over after this one
    stopped renewing it in time)."""


class RegistryError(MeanderError):
    """The model registry has no such version or alias, or refused a change."""


class ModelTampered(RegistryError):
    """A model blob's signature does not match: it is refused and never unpickled."""
