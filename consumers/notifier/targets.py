"""Webhook targets: where a subscription may send.

A subscription's URL is given by whoever holds an admin key, and the notifier POSTs from inside
the deployment: without a check, a subscription could make it call the cloud's metadata service
or an internal admin port. So a target must be ``http`` or ``https``, and every address its host
resolves to must be public, unless ``[service] allow_private_webhooks`` says otherwise. The
check runs again before each delivery attempt
(:class:`~meander.consumers.notifier.poster.Poster`), because what a name resolves
to may change.

>>> try:
...     check_target("http://127.0.0.1:8080/hook")
... except UnsafeTarget as refused:
...     print(refused)  # doctest: +ELLIPSIS
the host 127.0.0.1 resolves to 127.0.0.1, a loopback address; ...
>>> check_target("http://127.0.0.1:8080/hook", allow_private=True)
>>> check_target("ftp://hooks.example/in")
Traceback (most recent call last):
  ...
meander.consumers.notifier.targets.UnsafeTarget: the scheme must be http or https, got 'ftp'
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

from meander.exceptions import MeanderError

__all__ = ["Resolver", "UnsafeTarget", "WebhookUrl", "check_peer", "check_target", "refusal"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# Checked in this order: the first that applies names the refusal.
_CLASSES: tuple[tuple[str, Callable[[Address], bool]], ...] = (
    ("an unspecified", lambda address: address.is_unspecified),
    ("a loopback", lambda address: address.is_loopback),
    ("a link-local", lambda address: address.is_link_local),
    ("a multicast", lambda address: address.is_multicast),
    ("a private", lambda address: address.is_private),
    ("a reserved", lambda address: address.is_reserved),
    # Shared address space (100.64.0.0/10) and the like: not private, not reachable either.
    ("a non-global", lambda address: not address.is_global),
)


_ONLY = (
    "webhooks may only target public addresses "
    "(an operator can set [service] allow_private_webhooks = true)"
)


class UnsafeTarget(MeanderError, ValueError):
    """A webhook URL the notifier must not call; the message says why and what to change."""


def refusal(address: str) -> str | None:
    """Why ``address`` is no place to deliver to (its class), or None for a public address.

    >>> refusal("10.1.2.3"), refusal("169.254.169.254"), refusal("93.184.215.14")
    ('a private', 'a link-local', None)
    >>> refusal("::ffff:127.0.0.1")
    'a loopback'
    """
    parsed: Address = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
    for name, applies in _CLASSES:
        if applies(parsed):
            return name
    return None


def check_target(url: str, *, allow_private: bool = False, resolve: Resolver | None = None) -> None:
    """Raise :class:`UnsafeTarget` unless ``url`` may receive deliveries.

    ``resolve(host, port)`` gives the addresses of a host (``getaddrinfo`` by default);
    with ``allow_private`` only the scheme and the host's presence are checked.
    """
    if any(char.isspace() or not char.isprintable() for char in url):
        raise UnsafeTarget("the URL holds spaces or control characters; percent-encode them")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise UnsafeTarget(f"the URL does not parse: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget(f"the scheme must be http or https, got {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("the URL names no host; give one, as in https://hooks.example/in")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTarget("the port is not a number between 0 and 65535") from None
    if allow_private:
        return
    try:
        addresses = (resolve or _getaddrinfo)(host, port)
    except (OSError, UnicodeError) as error:
        raise UnsafeTarget(f"the host {host} does not resolve: {error}") from None
    if not addresses:
        raise UnsafeTarget(f"the host {host} resolves to no address")
    for address in addresses:
        if (kind := refusal(address)) is not None:
            raise UnsafeTarget(f"the host {host} resolves to {address}, {kind} address; {_ONLY}")


def check_peer(address: str) -> None:
    """Raise :class:`UnsafeTarget` unless ``address``, the one a delivery connected to, is
    public: a name can resolve to a public address when checked, and to another a moment
    later when connected (DNS rebinding)."""
    if (kind := refusal(address)) is not None:
        raise UnsafeTarget(f"connected to {address}, {kind} address; {_ONLY}")


def _getaddrinfo(host: str, port: int) -> list[str]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in found]


def _target_url(url: str) -> str:
    try:
        check_target(url, allow_private=True)  # the scheme and host; the addresses when used
    except UnsafeTarget as error:
        raise ValueError(str(error)) from None
    return url


WebhookUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    AfterValidator(_target_url),
    Field(examples=["https://hooks.example/meander"]),
]
"""A webhook URL in a request: http or https, with a host (addresses are checked apart)."""
