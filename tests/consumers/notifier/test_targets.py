"""Webhook targets: only public http(s) addresses, unless private ones are allowed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from meander.consumers.notifier.targets import UnsafeTarget, check_target, refusal


@dataclass
class Resolver:
    """Answers ``addresses`` for any host, and remembers what it was asked."""

    addresses: list[str]
    asked: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        return self.addresses


def resolving(*addresses: str) -> Resolver:
    return Resolver(list(addresses))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("0.0.0.0", "an unspecified"),
        ("::", "an unspecified"),
        ("127.0.0.1", "a loopback"),
        ("127.8.9.10", "a loopback"),
        ("::1", "a loopback"),
        ("169.254.169.254", "a link-local"),  # the cloud metadata service
        ("fe80::1%eth0", "a link-local"),
        ("224.0.0.1", "a multicast"),
        ("ff02::1", "a multicast"),
        ("10.0.0.1", "a private"),
        ("172.16.5.4", "a private"),
        ("192.168.1.1", "a private"),
        ("fd00::1", "a private"),
        ("240.0.0.1", "a private"),  # reserved, and Python counts it as private too
        ("100.64.0.1", "a non-global"),  # carrier-grade NAT
        ("::ffff:10.0.0.1", "a private"),  # IPv4-mapped
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
    ],
)
def test_refusal_names_the_class_of_each_address(address: str, kind: str | None) -> None:
    assert refusal(address) == kind


def test_a_public_target_passes_and_its_port_is_the_schemes_default() -> None:
    resolve = resolving("93.184.215.14")
    check_target("https://hooks.example/in", resolve=resolve)
    check_target("http://hooks.example:8080/in", resolve=resolve)
    assert resolve.asked == [("hooks.example", 443), ("hooks.example", 8080)]


def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    resolve = resolving("93.184.215.14", "10.1.2.3")
    with pytest.raises(UnsafeTarget, match=r"resolves to 10\.1\.2\.3, a private address"):
        check_target("https://hooks.example/in", resolve=resolve)


def test_the_refusal_says_how_to_allow_private_targets() -> None:
    with pytest.raises(UnsafeTarget, match="allow_private_webhooks = true"):
        check_target("http://localhost:9/hook", resolve=resolving("127.0.0.1"))


def test_allowing_private_targets_skips_resolution() -> None:
    resolve = resolving("127.0.0.1")
    check_target("http://localhost:9/hook", allow_private=True, resolve=resolve)
    assert resolve.asked == []


def test_a_host_that_does_not_resolve_is_refused() -> None:
    def fail(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeTarget, match=r"the host nowhere\.invalid does not resolve"):
        check_target("https://nowhere.invalid/in", resolve=fail)
    with pytest.raises(UnsafeTarget, match="resolves to no address"):
        check_target("https://nowhere.invalid/in", resolve=resolving())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example/in", "the scheme must be http or https, got 'ftp'"),
        ("file:///etc/passwd", "the scheme must be http or https, got 'file'"),
        ("hooks.example/in", "the scheme must be http or https, got ''"),
        ("http:///in", "the URL names no host"),
        ("http://hooks.example:99999/in", "the port is not a number"),
        ("http://[::1/in", "the URL does not parse"),
        ("http://hooks.example/a b", "spaces or control characters"),
        ("http://hooks\x00.example/", "spaces or control characters"),
    ],
)
def test_malformed_urls_are_refused_even_when_private_targets_are_allowed(
    url: str, problem: str
) -> None:
    with pytest.raises(UnsafeTarget) as refused:
        check_target(url, allow_private=True)
    assert problem in str(refused.value)
