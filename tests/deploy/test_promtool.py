"""deploy/'s Prometheus and Alertmanager files, checked by the tools that load them.

``promtool check config`` and ``check rules`` parse them as Prometheus would; ``promtool test
rules`` runs the unit tests in deploy/prometheus/tests/, and each alert's tests are shown to
depend on its expression: replaced by one that never fires, or one that always does, they fail.
``amtool`` checks the Alertmanager example and where it routes each alert.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "meander.yml"
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "observability.md"

# The contract's alerts (issue 5), and who the Alertmanager example sends each to.
ALERTS = {
    "MeanderAccuracyDrop": "models",
    "MeanderDriftRateHigh": "models",
    "MeanderConsumerLagGrowing": "operations",
    "MeanderDeadLetterRate": "operations",
    "MeanderComponentDown": "operations",
    "MeanderCheckpointTooOld": "operations",
    "MeanderRecordsDeletedUnread": "operations",
}
SEVERITIES = {"critical", "warning", "info"}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_rules() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def unit_tests() -> list[dict[str, Any]]:
    """Every alert_rule_test of every unit test file."""
    return [
        case
        for path in UNIT_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def run(command: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def explained(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_prometheus_config_and_its_rule_files_are_valid(tool: Any) -> None:
    result = run([tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert result.returncode == 0, explained(result)
    assert "1 rule files found" in result.stdout, "rule_files matches no file"
    assert f"{len(rules())} rules found" in result.stdout


def test_rules_are_valid(tool: Any) -> None:
    result = run([tool("promtool"), "check", "rules", str(RULES)])
    assert result.returncode == 0, explained(result)
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@pytest.mark.parametrize("path", UNIT_TESTS, ids=[path.stem for path in UNIT_TESTS])
def test_rule_unit_tests_pass(tool: Any, path: Path) -> None:
    result = run([tool("promtool"), "test", "rules", path.name], cwd=path.parent)
    assert result.returncode == 0, explained(result)
    assert "SUCCESS" in result.stdout


def test_the_alerts_are_the_contracts() -> None:
    assert sorted(alert_rules()) == sorted(ALERTS)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_says_how_bad_what_and_what_to_do(name: str) -> None:
    rule = alert_rules()[name]
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    for key in ("summary", "description"):
        assert "{{ $labels." in annotations[key], f"{name}'s {key} names no label"
    document, anchor = annotations["runbook"].split("#")
    assert ROOT / document == RUNBOOK
    headings = re.findall(r"^#+\s+(.+?)\s*$", RUNBOOK.read_text(), re.M)
    assert anchor in {re.sub(r"[^\w-]", "", h.lower().replace(" ", "-")) for h in headings}


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_alert_has_a_firing_and_a_quiet_unit_test(name: str) -> None:
    cases = [case for case in unit_tests() if case["alertname"] == name]
    assert any(case["exp_alerts"] for case in cases), f"no unit test where {name} fires"
    assert any(not case["exp_alerts"] for case in cases), f"no unit test where {name} is quiet"
    for case in cases:
        for expected in case["exp_alerts"]:
            assert set(expected["exp_annotations"]) == set(alert_rules()[name]["annotations"])


@pytest.mark.parametrize("replacement", ["vector(0) > 1", "vector(1)"], ids=["never", "always"])
@pytest.mark.parametrize("name", sorted(ALERTS))
def test_unit_tests_fail_when_an_alert_expression_is_wrong(
    tool: Any, tmp_path: Path, name: str, replacement: str
) -> None:
    groups = yaml.safe_load(RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                rule["expr"] = replacement
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(yaml.safe_dump(groups))
    shutil.copytree(PROMETHEUS / "tests", tmp_path / "tests")
    tests = sorted(path.name for path in (tmp_path / "tests").glob("*.yml"))
    result = run([tool("promtool"), "test", "rules", *tests], cwd=tmp_path / "tests")
    assert result.returncode != 0, f"the unit tests pass with {name} = {replacement}"
    assert f"alertname: {name}," in result.stdout + result.stderr, explained(result)


def test_alertmanager_example_is_valid(tool: Any) -> None:
    result = run([tool("amtool"), "check-config", str(ALERTMANAGER)])
    assert result.returncode == 0, explained(result)
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alertmanager_routes_each_alert_to_its_receiver(tool: Any, name: str) -> None:
    rule = alert_rules()[name]
    labels = [f"alertname={name}", f"severity={rule['labels']['severity']}", "stream=agrawal"]
    command = [tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}"]
    result = run([*command, *labels])
    assert result.returncode == 0, explained(result)
    assert result.stdout.split() == [ALERTS[name]]
