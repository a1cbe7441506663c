"""The adaptation benchmark in miniature: its streams, its detection matching, and one short run
of the whole suite (every baseline and the loop) on a classification and a regression stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import adaptation
from benchmarks.adaptation import price
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


def test_the_price_of_an_expensive_champion_is_the_median_of_interleaved_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    plain_speeds, loop_speeds = iter([600, 700, 500]), iter([500, 400, 250])

    def plain(model: object, bench: object) -> dict[str, float]:
        calls.append("plain")
        return {"score": 0.9, "events_per_second": next(plain_speeds)}

    def loop(bench: object, **options: object) -> dict[str, float]:
        calls.append("loop")
        assert options["candidates"] == []  # the champion is the only model the loop runs
        return {"score": 0.9, "events_per_second": next(loop_speeds)}

    monkeypatch.setattr(price, "prequential", plain)
    monkeypatch.setattr(price.served, "run", loop)

    cost = price.price(events=50, pairs=3)

    assert calls == ["plain", "loop"] * 3  # each loop run right after its plain run
    assert [p["times_plain"] for p in cost["pairs"]] == [1.2, 1.75, 2.0]
    assert cost["times_plain"] == 1.75 and cost["times_plain_range"] == [1.2, 2.0]
