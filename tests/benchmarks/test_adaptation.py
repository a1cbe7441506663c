"""The adaptation benchmark in miniature: its streams, its detection matching, and one short run
of the whole suite (every baseline and the loop) on a classification and a regression stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import adaptation
from benchmarks.adaptation.baselines import BASELINES
from benchmarks.adaptation.served import detection
from benchmarks.adaptation.streams import CATALOGUE, QUICK, build


def test_every_stream_of_the_suite_builds_with_its_task_and_its_changes() -> None:
    assert len(CATALOGUE) >= 12 and set(QUICK) <= set(CATALOGUE)
    tasks: set[str] = set()
    for key in CATALOGUE:
        stream = build(key, events=400)
        tasks.add(stream.task)
        assert stream.samples, key
        assert len(stream.samples) <= 400 or not stream.drifts, key  # synthetic: 400 samples
        assert all(0 < change < len(stream.samples) for change in stream.drifts), key
        assert set(stream.samples[0].features) <= set(stream.features), key
        labels = {sample.label for sample in stream.samples}
        if stream.task == "regression":
            assert all(type(label) in (int, float) for label in labels), key
        else:
            assert len(labels) >= 2, key
    assert tasks == {"binary", "multiclass", "regression"}
    with pytest.raises(KeyError, match="unknown stream 'nope'"):
        build("nope")


def test_detection_matches_the_first_alert_after_each_change_and_counts_the_rest() -> None:
    assert detection([130, 900, 2_050], [100, 2_000]) == {
        "delays": [30, 50],
        "false_alarms": [900],
    }
    assert detection([], [100]) == {"delays": [None], "false_alarms": []}
    # An alert a little before the change (within one chunk of labels) still detects it.
    assert detection([60], [100]) == {"delays": [-40], "false_alarms": []}


def test_a_tiny_suite_scores_every_baseline_and_the_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "adaptation.json"
    out = adaptation.main(
        quick=True,
        streams=["stagger_recurring", "friedman_abrupt"],
        events=600,
        out_path=out_path,
    )
    assert json.loads(out_path.read_text())["streams"].keys() == out["streams"].keys()
    for key, row in out["streams"].items():
        task = build(key, events=600).task
        for name in [*BASELINES[task], "loop"]:
            assert row[name]["events"] == 600, (key, name)
            assert row[name]["events_per_second"] > 0, (key, name)
        if task == "regression":
            assert 0.0 < row["loop"]["score"] < 100.0
        else:
            assert 0.5 < row["loop"]["score"] <= 1.0  # STAGGER is learnt within 600 events
        assert row["loop"]["champion"]
        assert {"delays", "false_alarms"} <= row["loop"].keys()
    printed = capsys.readouterr().out
    assert "| stagger_recurring |" in printed and "| friedman_abrupt |" in printed
    assert {t["target"] for t in out["targets"]} >= {"loop >= 3x ARF's events/s on every stream"}
