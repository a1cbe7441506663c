"""The registry on the embedded store and on real Redis: versions, aliases, lineage, tampering."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis

from meander.exceptions import ModelTampered, RegistryError
from meander.models.blobs import loads
from meander.models.registry import Registry
from meander.models.signing import Signer
from meander.models.specs import build_model
from meander.models.versions import Heads, ModelVersion

SPEC = "preprocessing.StandardScaler | linear_model.LogisticRegression"
Samples = Callable[..., list[tuple[dict[str, float], Any]]]


def _register(registry: Registry, parent: int | None = None, **kwargs: Any) -> int:
    return registry.register(build_model(SPEC), spec=SPEC, parent=parent, **kwargs).version


def test_register_numbers_versions_and_keeps_metadata(registry: Registry) -> None:
    first = registry.register(
        build_model(SPEC),
        spec=SPEC,
        cause={"kind": "initial"},
        training={"window": 0},
        config_hash="abc123",
    )
    second = _register(registry, parent=first.version, cause={"alert": "concept_drift"})
    assert (first.version, second) == (1, 2)
    stored = registry.get(1)
    assert stored == first
    assert stored.status == "registered"
    assert stored.revision == 1
    assert stored.cause == {"kind": "initial"}
    assert stored.training == {"window": 0}
    assert stored.config_hash == "abc123"
    assert stored.river_version
    assert stored.promoted_at is None
    assert [v.version for v in registry.versions()] == [1, 2]
    assert registry.get(2).parent == 1


def test_unknown_versions_are_named_with_the_known_ones(registry: Registry) -> None:
    _register(registry)
    for action in (
        lambda: registry.get(7),
        lambda: registry.load(7),
        lambda: registry.save(7, build_model(SPEC)),
        lambda: registry.promote(7),
        lambda: registry.add_challenger(7),
        lambda: _register(registry, parent=7),
    ):
        with pytest.raises(
            RegistryError, match=rf"{registry.stream}.*version 7.*known versions: 1"
        ):
            action()


def test_an_empty_registry(registry: Registry) -> None:
    assert registry.versions() == []
    assert registry.champion() is None
    assert registry.challengers() == ()
    assert registry.heads() == Heads(champion=None, challengers=(), revisions={})
    with pytest.raises(RegistryError, match="known versions: none yet"):
        registry.get(1)


def test_save_makes_a_new_revision_that_load_returns(
    registry: Registry, make_samples: Samples
) -> None:
    version = _register(registry)
    model, revision = registry.load(version)
    assert revision == 1
    data = make_samples("binary", 200)
    for x, y in data:
        model.learn_one(x, y)
    assert registry.save(version, model) == 2
    assert registry.save(version, model) == 3
    loaded, revision = registry.load(version)
    assert revision == 3
    assert registry.get(version).revision == 3
    probe = data[0][0]
    assert loaded.predict_proba_one(probe) == model.predict_proba_one(probe)
    assert loaded.predict_proba_one(probe) != build_model(SPEC).predict_proba_one(probe)


def test_snapshots_of_several_versions_and_other_writes_go_in_one_round_trip(
    registry: Registry, make_samples: Samples, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _register(registry), _register(registry)
    learned = build_model(SPEC)
    for x, y in make_samples("binary", 50):
        learned.learn_one(x, y)
    registry.save(second, build_model(SPEC))
    pipelines = 0
    make_pipeline = registry.store.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return make_pipeline(*args, **kwargs)

    monkeypatch.setattr(registry.store, "pipeline", counting_pipeline)
    written = registry.snapshots(
        {first: learned, second: learned}, also=lambda pipe: pipe.set("beside", b"1")
    )
    monkeypatch.undo()

    assert pipelines == 1
    assert {version: snapshot.revision for version, snapshot in written.items()} == {
        first: 2,
        second: 3,
    }
    assert all(snapshot.size > len(snapshot.pickled) > 100 for snapshot in written.values())
    probe = make_samples("binary", 1)[0][0]
    for version in (first, second):
        model, revision = registry.load(version)
        assert revision == written[version].revision
        assert model.predict_proba_one(probe) == learned.predict_proba_one(probe)
        copy = loads(written[version].pickled)
        assert copy.predict_proba_one(probe) == learned.predict_proba_one(probe)
    assert registry.store.get("beside") == b"1"


def test_promote_retires_the_previous_champion(registry: Registry) -> None:
    first, second = _register(registry), _register(registry, parent=1)
    assert registry.promote(first, reason="first model") is None
    registry.add_challenger(second, reason="drift on amount")
    assert registry.get(second).status == "challenger"
    assert registry.challengers() == (second,)

    previous = registry.promote(second, metrics={"accuracy": 0.91}, reason="beat the champion")
    assert previous == first
    assert registry.champion() == second
    assert registry.challengers() == ()
    promoted, retired = registry.get(second), registry.get(first)
    assert (promoted.status, promoted.reason) == ("champion", "beat the champion")
    assert promoted.metrics == {"accuracy": 0.91}
    assert promoted.promoted_at is not None
    assert (retired.status, retired.reason) == ("retired", "beat the champion")


def test_roll_back_restores_the_previous_champion(registry: Registry) -> None:
    first, second = _register(registry), _register(registry, parent=1)
    registry.promote(first)
    registry.promote(second)
    assert registry.roll_back(first, reason="accuracy fell 5%") == second
    assert registry.champion() == first
    assert registry.get(first).status == "champion"
    demoted = registry.get(second)
    assert (demoted.status, demoted.reason) == ("rolled_back", "accuracy fell 5%")
    with pytest.raises(RegistryError, match="already the champion"):
        registry.roll_back(first, reason="again")


def test_roll_back_needs_a_champion(registry: Registry) -> None:
    version = _register(registry)
    with pytest.raises(RegistryError, match="no champion to roll back"):
        registry.roll_back(version, reason="x")
    assert registry.champion() is None
    assert registry.get(version).status == "registered"


def test_reject_takes_a_challenger_out_of_the_race(registry: Registry) -> None:
    champion, challenger = _register(registry), _register(registry, parent=1)
    registry.promote(champion)
    registry.add_challenger(challenger)
    registry.reject(challenger, reason="lost the race by 0.03")
    assert registry.challengers() == ()
    rejected = registry.get(challenger)
    assert (rejected.status, rejected.reason) == ("rejected", "lost the race by 0.03")
    with pytest.raises(RegistryError, match="is the champion"):
        registry.reject(champion, reason="x")
    with pytest.raises(RegistryError, match="is the champion"):
        registry.add_challenger(champion)
    assert registry.get(champion).status == "champion"


def test_heads_hold_the_serving_state_in_one_round_trip(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion, first, second, _ = (_register(registry) for _ in range(4))
    registry.promote(champion)
    registry.add_challenger(second)
    registry.add_challenger(first)
    registry.save(first, build_model(SPEC))

    pipelines = 0
    make_pipeline = registry.store.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return make_pipeline(*args, **kwargs)

    def no_direct_commands(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"heads() sent {args[0]} outside its pipeline")

    monkeypatch.setattr(registry.store, "pipeline", counting_pipeline)
    monkeypatch.setattr(registry.store, "execute_command", no_direct_commands)
    heads = registry.heads()
    assert pipelines == 1
    assert heads == Heads(
        champion=1, challengers=(2, 3), revisions={1: 1, 2: 2, 3: 1}, published=True
    )
    assert heads.live == (1, 2, 3)


def test_heads_say_a_model_was_published_once_any_version_was_saved(registry: Registry) -> None:
    first, second = _register(registry), _register(registry)
    registry.promote(first)
    assert not registry.heads().published  # registered only: nothing has learned yet

    registry.save(first, build_model(SPEC))
    registry.promote(second)
    assert registry.heads() == Heads(champion=second, revisions={second: 1}, published=True)


def test_lineage_follows_parents_to_the_first_model(registry: Registry) -> None:
    first = _register(registry)
    second = _register(registry, parent=first)
    _register(registry, parent=first)  # a sibling, not an ancestor
    fourth = _register(registry, parent=second)
    assert [v.version for v in registry.lineage(fourth)] == [4, 2, 1]
    assert [v.version for v in registry.lineage(first)] == [1]


def test_concurrent_promotions_leave_exactly_one_champion(registry: Registry) -> None:
    versions = [_register(registry) for _ in range(4)]
    errors: list[BaseException] = []

    def promote_all(order: list[int]) -> None:
        try:
            for version in order * 5:
                try:
                    registry.promote(version)
                except RegistryError as error:
                    assert "already the champion" in str(error)
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=promote_all, args=(order,))
        for order in (versions, versions[::-1], versions[1:] + versions[:1])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    statuses = {v.version: v.status for v in registry.versions()}
    champions = [version for version, status in statuses.items() if status == "champion"]
    assert champions == [registry.champion()]
    assert set(statuses.values()) <= {"champion", "retired"}


def _blob_key(registry: Registry, version: int) -> str:
    return f"meander:registry:{registry.stream}:blob:{version}"


def _refuse_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model blob was unpickled before its signature was checked")

    monkeypatch.setattr(pickle, "loads", never)


def test_a_tampered_blob_is_refused_before_unpickling(
    registry: Registry, store: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    version = _register(registry)
    blob = bytearray(store.get(_blob_key(registry, version)) or b"")
    blob[-10] ^= 0x01
    store.set(_blob_key(registry, version), bytes(blob))
    _refuse_unpickling(monkeypatch)
    with pytest.raises(ModelTampered, match="signature does not match"):
        registry.load(version)


def test_a_blob_moved_to_another_version_is_refused(
    registry: Registry, store: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _register(registry), _register(registry)
    store.set(_blob_key(registry, second), store.get(_blob_key(registry, first)) or b"")
    _refuse_unpickling(monkeypatch)
    with pytest.raises(ModelTampered):
        registry.load(second)


def test_a_planted_unsigned_pickle_is_refused(
    registry: Registry, store: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    version = _register(registry)
    store.set(_blob_key(registry, version), pickle.dumps(build_model(SPEC)))
    _refuse_unpickling(monkeypatch)
    with pytest.raises(ModelTampered, match="not a signed meander model"):
        registry.load(version)


def test_another_key_is_refused(
    registry: Registry, store: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    version = _register(registry)
    stranger = Registry(store, registry.stream, Signer(b"another key, also 32 bytes long!"))
    _refuse_unpickling(monkeypatch)
    with pytest.raises(ModelTampered):
        stranger.load(version)


def test_metadata_is_json(registry: Registry, store: redis.Redis[bytes]) -> None:
    version = _register(registry, cause={"alert": {"kind": "concept_drift", "at": 12}})
    raw = store.get(f"meander:registry:{registry.stream}:meta:{version}")
    assert raw is not None
    data = orjson.loads(raw)
    assert data["cause"] == {"alert": {"kind": "concept_drift", "at": 12}}
    assert ModelVersion.from_dict(data).version == version


def test_model_version_round_trips_through_a_dict() -> None:
    entry = ModelVersion(stream="s", version=3, spec=SPEC, status="champion", metrics={"mae": 1})
    restored = ModelVersion.from_dict(orjson.loads(orjson.dumps(entry.to_dict())))
    assert restored == entry
    assert isinstance(restored.metrics["mae"], float)
    with pytest.raises(ValueError, match="status 'crowned'"):
        ModelVersion.from_dict({**entry.to_dict(), "status": "crowned"})


def test_stream_names_are_checked(store: redis.Redis[bytes], signer: Signer) -> None:
    with pytest.raises(RegistryError, match="not a stream name"):
        Registry(store, "fraud:*", signer)
