"""docker-compose.yml, checked without Docker against the code it drives.

Containers only run where a Docker engine is, so these tests read the compose file with PyYAML
and hold it against the CLI, the settings and the API: every command parses, every
``MEANDER_*`` variable is a setting, the config file loads, and every address names a service
on a port that service listens on. The image's entrypoint is ``meander`` (see the Dockerfile),
so a service's ``command`` starts with the subcommand. Prometheus, Alertmanager and Grafana
are held against this file in tests/deploy/test_compose_agreement.py.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from pydantic import BaseModel
from typer.core import TyperGroup

from meander.cli.app import app
from meander.config import Settings, load_settings
from meander.consumers import COMPONENTS
from meander.services import create_app

ROOT = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
IMAGE_ROOT = PurePosixPath("/app")  # the Dockerfile's WORKDIR, where the repository is copied
PREFIX = "MEANDER_"
RESTARTING = {"always", "unless-stopped", "on-failure"}


def command_of(name: str) -> list[str]:
    command = SERVICES[name].get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def environment_of(name: str) -> dict[str, str]:
    environment = SERVICES[name].get("environment", {})
    if isinstance(environment, list):
        environment = dict(
            item.split("=", 1) if "=" in item else (item, "") for item in environment
        )
    return {key: str(value) for key, value in environment.items()}


def depends_on(name: str) -> dict[str, str]:
    dependencies = SERVICES[name].get("depends_on", {})
    if isinstance(dependencies, list):
        return dict.fromkeys(dependencies, "service_started")
    return {key: spec.get("condition", "service_started") for key, spec in dependencies.items()}


OURS = sorted(name for name, service in SERVICES.items() if "build" in service)
SERVING = [name for name in OURS if command_of(name)[:1] == ["serve"]]
# A one-shot service is one that others wait for to finish; every other service stays up.
ONE_SHOT = sorted(
    {
        dependency
        for name in SERVICES
        for dependency, condition in depends_on(name).items()
        if condition == "service_completed_successfully"
    }
)
LONG_RUNNING = sorted(set(SERVICES) - set(ONE_SHOT))


def parse(argv: list[str]) -> dict[str, Any]:
    """Parse ``meander ARGV`` as the CLI would, down to the leaf command, and return its options.

    Nothing runs: each command only builds its context, which checks names, arguments and values.
    """
    command = typer.main.get_command(app)
    context = command.make_context("meander", list(argv))
    while isinstance(command, TyperGroup):
        name, found, argv = command.resolve_command(context, argv)
        assert name is not None and found is not None
        command, context = found, found.make_context(name, argv, parent=context)
    return dict(context.params)


def healthcheck_of(name: str) -> list[str]:
    healthcheck = SERVICES[name].get("healthcheck", {})
    test = ["NONE"] if healthcheck.get("disable") else healthcheck.get("test", ["NONE"])
    return ["CMD-SHELL", test] if isinstance(test, str) else [str(word) for word in test]


def repo_path(container_path: str) -> Path:
    return ROOT / PurePosixPath(container_path).relative_to(IMAGE_ROOT)


def container_ports(name: str) -> set[int]:
    ports = {int(port) for port in SERVICES[name].get("expose", [])}
    for entry in SERVICES[name].get("ports", []):
        # "8000", "8000:8000", "127.0.0.1:8000:8000/tcp" or {target: 8000, ...}
        target = entry["target"] if isinstance(entry, dict) else str(entry).split(":")[-1]
        ports.add(int(str(target).split("/")[0]))
    return ports


def kafka_listeners(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` as {name: "host:port"}."""
    return dict(listener.split("://") for listener in value.split(","))


def listening_ports(name: str, settings_of: Callable[[str], Settings]) -> set[int]:
    if name in SERVING:
        return {served_address(name, settings_of(name))[1]}
    if "KAFKA_LISTENERS" in environment_of(name):
        listeners = kafka_listeners(environment_of(name)["KAFKA_LISTENERS"]).values()
        return {int(address.rsplit(":", 1)[1]) for address in listeners}
    return container_ports(name)


def served_address(name: str, settings: Settings) -> tuple[str, int]:
    options = parse(command_of(name))
    return options["host"] or settings.api_host, options["port"] or settings.api_port


def routes(settings: Settings) -> set[str]:
    return {getattr(route, "path", "") for route in create_app(settings).routes}


def is_setting(key: str) -> bool:
    model: type[BaseModel] = Settings
    *sections, leaf = key.removeprefix(PREFIX).lower().split("__")
    for section in sections:
        field = model.model_fields.get(section)
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return False
        model = field.annotation
    return leaf in model.model_fields


def dockerignored(path: Path) -> bool:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip().strip("/") for line in lines if line.strip()[:1] not in ("", "#")]
    parts = path.relative_to(ROOT).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
        for prefix in prefixes
        for pattern in patterns
    )


def mounts(name: str) -> dict[str, str]:
    """{target: source} of a service's volumes, short syntax."""
    return {entry.split(":")[1]: entry.split(":")[0] for entry in SERVICES[name].get("volumes", [])}


@pytest.fixture
def settings_of(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Settings]:
    """The settings a service's container loads: its environment, its config file from here."""

    def load(name: str) -> Settings:
        for key in list(os.environ):
            if key.startswith(PREFIX):
                monkeypatch.delenv(key)
        for key, value in environment_of(name).items():
            if key.startswith(PREFIX):
                monkeypatch.setenv(key, str(repo_path(value)) if key == "MEANDER_CONFIG" else value)
        return load_settings()

    return load


def test_image_runs_meander_from_the_repository_copy() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = dict(re.findall(r"^(ENTRYPOINT|WORKDIR)\s+(.+?)\s*$", dockerfile, re.M))
    assert instructions.get("ENTRYPOINT") == '["meander"]'
    assert instructions.get("WORKDIR") == str(IMAGE_ROOT)
    for name in OURS:
        assert SERVICES[name]["build"] == ".", f"{name} builds another context"
        assert "entrypoint" not in SERVICES[name], f"{name} replaces the meander entrypoint"


def test_stack_runs_every_component_and_the_api() -> None:
    ran = sorted(command_of(name)[1] for name in OURS if command_of(name)[:1] == ["run"])
    assert ran == sorted(COMPONENTS), "each component runs in a container of its own"
    assert SERVING, "no service runs `meander serve`"


@pytest.mark.parametrize("name", OURS)
def test_command_is_one_the_cli_accepts(name: str) -> None:
    argv = command_of(name)
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    assert argv[:1] and argv[0] in group.commands, f"{name}: {argv} is not a meander subcommand"
    parse(argv)


@pytest.mark.parametrize("name", OURS)
def test_environment_names_only_settings(name: str) -> None:
    # MEANDER_CONFIG is the one variable load_settings reads itself rather than a field.
    keys = [key for key in environment_of(name) if key.startswith(PREFIX)]
    unknown = [key for key in keys if key != "MEANDER_CONFIG" and not is_setting(key)]
    assert not unknown, f"{name}: {unknown} are not fields of meander.config.Settings"


@pytest.mark.parametrize("name", OURS)
def test_settings_load_with_the_config_file_in_the_image(
    name: str, settings_of: Callable[[str], Settings]
) -> None:
    config = environment_of(name).get("MEANDER_CONFIG")
    assert config, f"{name} sets no MEANDER_CONFIG"
    assert repo_path(config).is_file() and not dockerignored(repo_path(config))
    assert settings_of(name).streams, f"{name}: {config} configures no stream"


@pytest.mark.parametrize("name", OURS)
def test_backends_are_healthy_services_listening_there(
    name: str, settings_of: Callable[[str], Settings]
) -> None:
    settings = settings_of(name)
    assert settings.kafka_bootstrap and settings.redis_url, f"{name} would run embedded backends"
    redis = urlsplit(settings.redis_url)
    addresses = [*settings.kafka_bootstrap.split(","), f"{redis.hostname}:{redis.port or 6379}"]
    for host, port in (address.rsplit(":", 1) for address in addresses):
        assert host in SERVICES and int(port) in listening_ports(host, settings_of), (name, host)
        assert depends_on(name).get(host) == "service_healthy", f"{name} may start before {host}"
    for address in settings.kafka_bootstrap.split(","):
        broker = environment_of(address.split(":")[0])
        advertised = kafka_listeners(broker["KAFKA_ADVERTISED_LISTENERS"]).values()
        assert address in advertised, f"Kafka redirects {name} away from {address}"


def test_kafka_is_one_broker_whose_topics_meander_creates() -> None:
    environment = environment_of("kafka")
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 1
    replicated = {
        key: value for key, value in environment.items() if key.endswith(("_FACTOR", "_ISR"))
    }
    assert replicated and set(replicated.values()) == {"1"}, replicated
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_advertises_its_published_ports_as_localhost() -> None:
    environment = environment_of("kafka")
    listening = kafka_listeners(environment["KAFKA_LISTENERS"])
    advertised = kafka_listeners(environment["KAFKA_ADVERTISED_LISTENERS"])
    for entry in SERVICES["kafka"]["ports"]:
        published, target = entry.split(":")[-2:]
        [listener] = [key for key, address in listening.items() if address.endswith(f":{target}")]
        assert advertised.get(listener) == f"localhost:{published}"


@pytest.mark.parametrize("name", OURS)
def test_components_start_after_their_topics_exist(name: str) -> None:
    creators = [other for other in OURS if command_of(other)[:2] == ["topics", "create"]]
    assert creators, "no service runs `meander topics create`"
    if name not in creators:
        assert all(depends_on(name).get(c) == "service_completed_successfully" for c in creators)


@pytest.mark.parametrize("name", SERVING)
def test_api_serves_where_it_is_published_and_probed(
    name: str, settings_of: Callable[[str], Settings]
) -> None:
    settings = settings_of(name)
    host, port = served_address(name, settings)
    assert host == "0.0.0.0", f"{name} binds {host}, unreachable through its published port"
    assert port in container_ports(name), (
        f"{name} serves on {port}, publishes {container_ports(name)}"
    )
    [url] = re.findall(r"https?://[^\s'\"]+", " ".join(healthcheck_of(name)))
    assert urlsplit(url).port == port and urlsplit(url).path in routes(settings)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_restart_and_have_a_healthcheck(name: str) -> None:
    assert SERVICES[name].get("restart") in RESTARTING, f"{name} stays down after a crash"
    test = healthcheck_of(name)
    assert test[0] != "NONE", f"{name} has no healthcheck"
    if test[:3] == ["CMD", "python", "-c"]:
        # A probe that fails to import would call a healthy container unhealthy forever.
        for node in ast.walk(ast.parse(test[3])):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                assert all(hasattr(module, alias.name) for alias in node.names), test[3]


@pytest.mark.parametrize("name", ONE_SHOT)
def test_one_shot_services_are_not_restarted(name: str) -> None:
    assert SERVICES[name].get("restart", "no") == "no"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_exist_and_can_be_met(name: str) -> None:
    for dependency, condition in depends_on(name).items():
        assert dependency in SERVICES and dependency != name, f"{name} -> {dependency}"
        assert condition != "service_healthy" or healthcheck_of(dependency)[0] != "NONE"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_volumes_are_declared_or_in_the_repository(name: str) -> None:
    for target, source in mounts(name).items():
        if source.startswith((".", "/")):
            assert (ROOT / source).exists(), f"{name} mounts {source} at {target}"
        else:
            assert source in (COMPOSE.get("volumes") or {}), f"{name}: undeclared volume {source}"
