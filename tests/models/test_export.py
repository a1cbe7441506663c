"""Export: a registry version as a plain pickle that loads where only River is installed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meander.exceptions import RegistryError
from meander.models.export import export_model, load_exported, sidecar_path
from meander.models.registry import Registry
from meander.models.specs import build_model
from meander.models.versions import ModelVersion

SPEC = "preprocessing.StandardScaler | linear_model.LogisticRegression(l2=0.01)"
# Built with meander's faster search (models.neighbours), exported with River's.
NEIGHBOURS = "neighbors.KNNClassifier(engine=neighbors.LazySearch(window_size=50))"
REPO = Path(__file__).resolve().parents[2]
Samples = Callable[..., list[tuple[dict[str, float], Any]]]

# Runs in a plain interpreter: no repo on sys.path and meander's packages made unimportable.
LOAD_AND_PREDICT = """
import json, os, pickle, sys
repo, path, probe = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path = [p for p in sys.path if p and os.path.realpath(p) != repo]
for name in ("meander", "models", "consumers", "producers", "services"):
    sys.modules[name] = None
with open(path, "rb") as file:
    model = pickle.load(file)
print(json.dumps({str(k): v for k, v in model.predict_proba_one(probe).items()}))
"""


def _trained_champion(registry: Registry, make_samples: Samples, spec: str = SPEC) -> Any:
    model = build_model(spec)
    for x, y in make_samples("binary", 300):
        model.learn_one(x, y)
    version = registry.register(model, spec=spec).version
    registry.promote(version)
    return model


@pytest.mark.parametrize("spec", [SPEC, NEIGHBOURS])
def test_the_champion_loads_in_plain_python(
    registry: Registry, make_samples: Samples, tmp_path: Path, spec: str
) -> None:
    model = _trained_champion(registry, make_samples, spec)
    path = export_model(registry, None, tmp_path / "exported" / "fraud.pkl")
    probe = {"a": 0.3, "b": -0.2, "c": 1.0}
    done = subprocess.run(
        [sys.executable, "-I", "-c", LOAD_AND_PREDICT, str(REPO), str(path), json.dumps(probe)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = {str(k): v for k, v in model.predict_proba_one(probe).items()}
    assert json.loads(done.stdout) == pytest.approx(expected)


def test_the_sidecar_describes_the_file(
    registry: Registry, make_samples: Samples, tmp_path: Path
) -> None:
    _trained_champion(registry, make_samples)
    registry.save(1, build_model(SPEC))
    path = export_model(registry, 1, tmp_path / "model.pkl")
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar_path(path).name == "model.pkl.json"
    assert {k: sidecar[k] for k in ("stream", "version", "revision", "spec")} == {
        "stream": registry.stream,
        "version": 1,
        "revision": 2,
        "spec": SPEC,
    }
    assert sidecar["river_version"] == registry.get(1).river_version
    assert len(sidecar["sha256"]) == 64
    assert sidecar["exported_at"]
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["model.pkl", "model.pkl.json"]


def test_load_exported_checks_the_sidecar(
    registry: Registry, make_samples: Samples, tmp_path: Path
) -> None:
    model = _trained_champion(registry, make_samples)
    path = export_model(registry, None, tmp_path / "model.pkl")
    probe = {"a": 0.1, "b": 0.1, "c": 0.0}
    assert load_exported(path).predict_proba_one(probe) == model.predict_proba_one(probe)
    data = path.read_bytes()
    path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(RegistryError, match="does not match its sidecar"):
        load_exported(path)


def test_without_a_champion_a_version_is_needed(registry: Registry, tmp_path: Path) -> None:
    registry.register(build_model(SPEC), spec=SPEC)
    # The way to list the versions it names exists (no `meander models` command does).
    listed = rf"no champion to export; pass a version \(GET /v1/streams/{registry.stream}/models"
    with pytest.raises(RegistryError, match=listed):
        export_model(registry, None, tmp_path / "model.pkl")
    assert not (tmp_path / "model.pkl").exists()


def test_a_model_holding_meander_objects_is_refused(registry: Registry, tmp_path: Path) -> None:
    entry = ModelVersion(stream="s", version=1, spec=SPEC, status="registered")
    version = registry.register({"model": build_model(SPEC), "entry": entry}, spec=SPEC).version
    with pytest.raises(
        RegistryError, match=r"holds objects from meander \(meander.models.versions"
    ):
        export_model(registry, version, tmp_path / "model.pkl")
    assert list(tmp_path.iterdir()) == []


def test_a_regression_tree_over_a_feature_that_only_grows_is_exported(
    registry: Registry, tmp_path: Path
) -> None:
    # Its E-BSTs of split candidates are chains of every value a leaf saw (about 1,250 long
    # here): pickled from the root, pickle's recursion gave up, and export raised RecursionError.
    import pickle
    import random

    noise, stream = random.Random(0), []
    for day in range(4_000):
        stream.append(
            ({"day": float(day), "x": noise.random()}, 40 + day / 100 + noise.gauss(0, 1))
        )
    spec = (
        "preprocessing.TargetStandardScaler(regressor=tree.HoeffdingTreeRegressor(grace_period=50))"
    )
    model = build_model(spec)
    for x, y in stream[:3_000]:
        model.learn_one(x, y)
    version = registry.register(model, spec=spec).version
    path = export_model(registry, version, tmp_path / "deep.pkl")
    assert b"meander" not in path.read_bytes()  # River alone loads it: the wrapper is gone
    twin = pickle.loads(path.read_bytes())
    for x, y in stream[3_000:]:
        assert twin.predict_one(x) == model.predict_one(x)
        model.learn_one(x, y)
        twin.learn_one(x, y)


def test_a_file_that_is_no_exported_model_is_refused_saying_so(tmp_path: Path) -> None:
    # meander predict --model-file showed an UnpicklingError traceback for the first, and
    # scored nothing with the second ("0 scored, 2 not"), exiting 0.
    import pickle

    garbage, table = tmp_path / "garbage.pkl", tmp_path / "table.pkl"
    garbage.write_bytes(b"garbage")
    table.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(RegistryError, match=r"garbage.pkl is not a model file .*UnpicklingError"):
        load_exported(garbage)
    with pytest.raises(RegistryError, match="holds an object of type 'dict', not a River model"):
        load_exported(table)
