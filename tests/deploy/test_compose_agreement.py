"""docker-compose.yml, deploy/prometheus, deploy/alertmanager and deploy/grafana agree.

Prometheus scrapes every process compose runs, on the port that process serves its metrics
on; the rule files, the Alertmanager configuration and Grafana's provisioning are mounted where
the tools look for them; and every metric the rules and the dashboard query is one of the
contract's, which is the set meander's code registers.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import REGISTRY

import meander.telemetry  # noqa: F401  (defines every metric on the default registry)
from meander.config import Settings
from meander.services import create_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS: dict[str, Any] = yaml.safe_load(PROMETHEUS_FILE.read_text())
JOBS: dict[str, dict[str, Any]] = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
RULES = ROOT / "deploy" / "prometheus" / "rules" / "meander.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
METRICS_PORT = 9400  # the contract's metrics_port default, which compose relies on


def command_of(name: str) -> list[str]:
    command = SERVICES[name].get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


COMPONENTS = {command_of(n)[1]: n for n in SERVICES if command_of(n)[:1] == ["run"]}
SERVING = [name for name in SERVICES if command_of(name)[:1] == ["serve"]]
OURS = sorted(name for name, service in SERVICES.items() if "build" in service)


def ports_of(name: str) -> set[int]:
    """The container ports a service exposes to the network or publishes."""
    ports = {int(port) for port in SERVICES[name].get("expose", [])}
    for entry in SERVICES[name].get("ports", []):
        target = entry["target"] if isinstance(entry, dict) else str(entry).split(":")[-1]
        ports.add(int(str(target).split("/")[0]))
    return ports


def targets(job: dict[str, Any]) -> list[tuple[str, int]]:
    """(host, port) of a job's static targets and DNS names."""
    found = [
        (target.rsplit(":", 1)[0], int(target.rsplit(":", 1)[1]))
        for group in job.get("static_configs", [])
        for target in group["targets"]
    ]
    for lookup in job.get("dns_sd_configs", []):
        assert lookup.get("type", "SRV") == "A", "an SRV lookup finds nothing in compose's DNS"
        found += [(name, int(lookup["port"])) for name in lookup["names"]]
    return found


def mounts(name: str) -> dict[PurePosixPath, Path]:
    """{target in the container: repository path} of a service's bind mounts."""
    binds = [v.split(":") for v in SERVICES[name].get("volumes", []) if v.startswith(".")]
    return {PurePosixPath(target): (ROOT / source).resolve() for source, target, *_ in binds}


def in_repository(name: str, path: PurePosixPath) -> Path:
    """The repository path a service sees at ``path``, through the bind mount that holds it."""
    for target, source in mounts(name).items():
        if path == target or target in path.parents:
            return source / path.relative_to(target)
    raise AssertionError(f"{name} mounts nothing at {path}")


def dashboard_queries(node: Any) -> Iterator[str]:
    """Every PromQL expression of a dashboard: panel targets, annotations, variables."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            elif key == "definition" and isinstance(value, str) and value:
                yield value.removeprefix("label_values(").rsplit(",", 1)[0]
            else:
                yield from dashboard_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_queries(item)


def rule_queries() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_every_component_and_the_api_is_scraped_where_it_serves_metrics() -> None:
    assert COMPONENTS and SERVING
    for component, service in COMPONENTS.items():
        job = JOBS.get(f"meander-{component}")
        assert job is not None, f"no job meander-{component} scrapes the {component}"
        assert targets(job) == [(service, METRICS_PORT)]
        assert METRICS_PORT in ports_of(service), f"{service} does not expose {METRICS_PORT}"
        assert "MEANDER_METRICS_PORT" not in SERVICES[service].get("environment", {})
    routes = {getattr(route, "path", "") for route in create_app(Settings()).routes}
    for service in SERVING:
        job = JOBS.get(f"meander-{service}")
        assert job is not None, f"no job meander-{service} scrapes {service}"
        assert job.get("metrics_path", "/metrics") in routes
        [(host, port)] = targets(job)
        assert host == service and port == Settings().api_port and port in ports_of(service)


def test_metrics_port_is_the_settings_default() -> None:
    assert Settings.model_fields["metrics_port"].default == METRICS_PORT


def test_contract_is_what_meander_registers(contract: dict[str, str]) -> None:
    registered = {
        family.name + ("_total" if family.type == "counter" else ""): family.type
        for family in REGISTRY.collect()
        if family.name.startswith("meander_")
    }
    assert registered == contract


@pytest.mark.parametrize("job", sorted(JOBS))
def test_targets_are_services_on_ports_they_listen_on(job: str) -> None:
    for host, port in targets(JOBS[job]):
        service = "prometheus" if host == "localhost" else host
        assert service in SERVICES, f"{job} scrapes {host}, which is not a compose service"
        assert port in ports_of(service), f"{job}: {service} listens on {ports_of(service)}"
        # MeanderComponentDown watches up{job=~"meander.*"}: exactly the jobs of our image.
        assert job.startswith("meander") == (service in OURS), job


def test_rule_files_are_mounted_where_the_config_looks() -> None:
    config = PurePosixPath("/etc/prometheus/prometheus.yml")
    assert in_repository("prometheus", config) == PROMETHEUS_FILE
    found: list[Path] = []
    for pattern in PROMETHEUS["rule_files"]:
        directory, glob = (config.parent / pattern).parent, PurePosixPath(pattern).name
        found += in_repository("prometheus", directory).glob(glob)
    assert found == [RULES]


def test_alerts_go_to_the_alertmanager_service() -> None:
    [manager] = PROMETHEUS["alerting"]["alertmanagers"]
    [(host, port)] = targets(manager)
    assert host in SERVICES and port in ports_of(host)
    config = in_repository(host, PurePosixPath("/etc/alertmanager/alertmanager.yml"))
    assert config == ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def test_grafana_reads_prometheus_from_its_service() -> None:
    provisioning = in_repository("grafana", PurePosixPath("/etc/grafana/provisioning"))
    assert provisioning == GRAFANA / "provisioning"
    config = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    for datasource in config["datasources"]:
        url = urlsplit(datasource["url"])
        assert url.hostname in SERVICES and url.port in ports_of(url.hostname)


def test_grafana_provisions_the_dashboards_of_the_repository() -> None:
    provisioning = GRAFANA / "provisioning" / "dashboards"
    providers = [
        provider
        for path in sorted(provisioning.glob("*.yml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    assert providers, "no dashboard provider"
    provided = [
        path
        for provider in providers
        for path in in_repository("grafana", PurePosixPath(provider["options"]["path"])).glob(
            "*.json"
        )
    ]
    assert DASHBOARDS and sorted(provided) == DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.stem for path in DASHBOARDS])
def test_dashboard_queries_the_provisioned_prometheus(path: Path) -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uids = {datasource["uid"] for datasource in datasources["datasources"]}
    dashboard = json.loads(path.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    chosen = variables["datasource"]
    assert chosen["query"] == "prometheus" and chosen["current"]["value"] in uids
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], f"{panel['title']} queries nothing"


def test_metric_names_are_read_from_promql(metric_names: Callable[[str], set[str]]) -> None:
    expr = (
        'histogram_quantile(0.99, sum by (stream, le) (rate(a_seconds_bucket{stream=~"$stream"}'
        '[$__rate_interval]))) > ignoring(metric) b{metric="rate"} - 0.1 or absent(up{job="x"})'
        " and on (stream) time() - c offset 5m"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b", "up", "c"}


def test_rules_use_only_contract_metrics(
    contract: dict[str, str],
    series_names: Callable[[dict[str, str]], frozenset[str]],
    metric_names: Callable[[str], set[str]],
) -> None:
    used = set().union(*(metric_names(expr) for expr in rule_queries()))
    assert used, "no metric found in the rules"
    assert not used - series_names(contract), "not in the contract"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.stem for path in DASHBOARDS])
def test_dashboard_uses_only_contract_metrics_and_shows_them_all(
    path: Path,
    contract: dict[str, str],
    series_names: Callable[[dict[str, str]], frozenset[str]],
    metric_names: Callable[[str], set[str]],
) -> None:
    queries = list(dashboard_queries(json.loads(path.read_text())))
    used = set().union(*(metric_names(expr) for expr in queries))
    assert not used - series_names(contract), "not in the contract"
    unseen = [name for name in contract if not series_names({name: contract[name]}) & used]
    assert not unseen, "metrics no panel shows"
