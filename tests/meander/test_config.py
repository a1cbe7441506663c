"""Settings: sources and their order, defaults that work, and errors that name the key."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from meander import topics
from meander.config import StreamConfig, load_settings
from meander.config.search_space import default_candidates, default_model
from meander.exceptions import ConfigError
from meander.models.specs import build_model
from meander.models.trial import check_models

STREAM = """
[[streams]]
name = "fraud"
task = "binary"
partitions = 6
features = { amount = "numeric", country = { type = "categorical", categories = ["FR", "DE"] } }
[streams.promotion]
min_samples = 200
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "meander.toml"
    path.write_text('kafka_bootstrap = "file:9092"\n' + STREAM)
    return path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MEANDER_CONFIG",
        "MEANDER_KAFKA_BOOTSTRAP",
        "MEANDER_REDIS_URL",
        "MEANDER_STREAMS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_run_embedded_with_no_streams() -> None:
    settings = load_settings()
    assert (settings.uses_kafka, settings.uses_redis, settings.streams) == (False, False, [])


def test_file_is_read_and_the_environment_overrides_it(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(config_file).kafka_bootstrap == "file:9092"
    monkeypatch.setenv("MEANDER_KAFKA_BOOTSTRAP", "env:9092")
    monkeypatch.setenv("MEANDER_CONFIG", str(config_file))
    settings = load_settings()
    assert settings.kafka_bootstrap == "env:9092"
    fraud = settings.stream("fraud")
    assert fraud.features["country"].categories == ["FR", "DE"]
    assert fraud.promotion.min_samples == 200 and fraud.promotion.significance == 0.05
    kinds = {name: feature.type for name, feature in fraud.features.items()}
    assert fraud.model == default_model("binary", kinds) and "OneHotEncoder" in fraud.model
    assert topics.layout(settings.streams)["fraud.feedback"] == 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kafka_timeout_seconds = 0", "kafka_timeout_seconds: Input should be greater than 0"),
        ("redis_url = 'http://x'", "redis_url: Value error, must start with redis://"),
        ("kafak_bootstrap = 'x'", "kafak_bootstrap: Extra inputs are not permitted"),
        ("kafka_client = 'librdkafka'", "kafka_client: Input should be 'kafka-python' or"),
        (STREAM.replace('"binary"', '"ranking"'), "streams.0.task: Input should be 'binary'"),
        (STREAM.replace('"fraud"', '"fr aud"'), "streams.0.name: Value error, 'fr aud' is not"),
        (STREAM.replace("min_samples", "min_sample"), "streams.0.promotion.min_sample: Extra"),
        (STREAM + STREAM.replace("partitions = 6", ""), "repeated: fraud"),
        (STREAM.replace('"numeric"', '"text"'), "streams.0.features.amount.type"),
        (STREAM.replace('type = "categorical", ', ""), "categories apply to categorical"),
        ("[[streams]]\nname='x'\ntask='binary'\nfeatures={}", "streams.0.features: Dictionary"),
        (
            STREAM + "[streams.encoding]\nid_field = 'amount'",
            "encoding.id_field 'amount' is also a feature",
        ),
        (STREAM + "[streams.encoding]\npredictions = 'avro'", "streams.0.encoding.predictions"),
        # TOML has nan and inf. A NaN bound or threshold compared false with everything (the
        # bound was ignored), an infinite timeout cannot be handed to a Kafka client.
        ("kafka_timeout_seconds = inf", "kafka_timeout_seconds: Input should be a finite number"),
        (STREAM + "min_gain = inf", "streams.0.promotion.min_gain: Input should be a finite"),
        (
            STREAM.replace('amount = "numeric"', "amount = { minimum = nan }"),
            "streams.0.features.amount.minimum: Input should be a finite number",
        ),
        (
            STREAM + "[streams.label_window]\nttl_seconds = inf",
            "streams.0.label_window.ttl_seconds: Input should be a finite number",
        ),
        ("[producer]\nrate = inf", "producer.rate: Input should be a finite number"),
        # Absurd sizes and durations passed the check and failed later: out of memory, or a
        # time-out no client holds. TOML writes a large number as a float, 1e20.
        (
            STREAM + "[streams.drift]\ndata_window = 1e20",
            "streams.0.drift.data_window: Value error, 1e+20 is above 10,000,000: a window's",
        ),
        (
            STREAM + "[streams.label_window]\nmax_pending = 100_000_000",
            "streams.0.label_window.max_pending: Value error, 100,000,000 is above 10,000,000",
        ),
        (
            STREAM + "[streams.label_window]\nttl_seconds = 1e300",
            "streams.0.label_window.ttl_seconds: Value error, 1e+300 is above 31,536,000",
        ),
        (STREAM + "max_challengers = 1e6", "streams.0.promotion.max_challengers: Extra inputs"),
        (
            STREAM + "[streams.learning]\nmax_challengers = 1e6",
            "streams.0.learning.max_challengers: Value error, 1e+06 is above 100",
        ),
        (STREAM.replace("partitions = 6", "partitions = 1e9"), "streams.0.partitions: Value"),
        ("kafka_timeout_seconds = 1e12", "kafka_timeout_seconds: Value error, 1e+12 is above"),
        ("transaction_timeout_seconds = 3600", "transaction_timeout_seconds: Value error, 3,600"),
        ("state_max_bytes = 2e9", "state_max_bytes: Value error, 2e+09 is above 104,857,600"),
        # A retry waits twice as long as the one before: 2,000 of them overflowed a float.
        ("[notifier]\nretries = 2000", "notifier.retries: Value error, 2,000 is above 20"),
        ("[service]\npublish_attempts = 1e20", "service.publish_attempts: Value error, 1e+20"),
        ("[producer]\nlabel_delay = 1e12", "producer.label_delay: Value error, 1e+12 is above"),
        (
            STREAM + "[producer]\nstream = 'fruad'",
            "Value error, producer.stream 'fruad' is not a configured stream (configured: fraud)",
        ),
        # A short signing key passed the check and stopped the first component that signed.
        ("model_signing_key = 'short'", "model_signing_key: Value error, the key has 5 bytes"),
        # A feature named "" (or blank) is no key of any event; no category allows no value.
        (
            STREAM.replace("amount =", '"" ='),
            "streams.0.features: Value error, a feature is named '': name each feature",
        ),
        (STREAM.replace("amount =", '" " ='), "streams.0.features: Value error, a feature is"),
        (
            STREAM.replace('["FR", "DE"]', "[]"),
            "streams.0.features.country: Value error, categories is empty",
        ),
        (
            STREAM.replace('type = "categorical",', 'type = "categorical", minimum = 0,'),
            "streams.0.features.country: Value error, minimum and maximum apply to numeric",
        ),
        # Settings that were accepted and then never acted: a webhook for a misspelt kind was
        # never called, an accuracy gain of 1 or more is never reached.
        (
            "[[notifier.webhooks]]\nurl = 'https://x.example'\nkinds = ['data_drfit']",
            "notifier.webhooks.0.kinds: Value error, 'data_drfit' is no alert kind or model",
        ),
        (STREAM + "min_gain = 2", "streams.0: Value error, promotion.min_gain = 2 is a difference"),
        (
            STREAM + "rollback_tolerance = 1.5",
            "promotion.rollback_tolerance = 1.5 is a difference of accuracy on a binary stream",
        ),
    ],
)
def test_a_bad_config_names_the_key_and_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_the_confluent_client_not_installed_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fast.toml"
    path.write_text("kafka_client = 'confluent-kafka'")
    assert load_settings(path).kafka_client == "confluent-kafka"  # installed: make install
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # as if it were not
    with pytest.raises(ConfigError, match=r"kafka_client: .*pip install 'meander\[fast\]'"):
        load_settings(path)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("kafka_bootstrap = \n")
    with pytest.raises(ConfigError, match=r"is not valid TOML: .*line 1"):
        load_settings(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes("client_id = 'caf\u00e9'\n".encode("latin-1"))  # a traceback before
    with pytest.raises(ConfigError, match=r"latin.toml is not UTF-8 text \(as TOML is\): byte 16"):
        load_settings(latin)
    with pytest.raises(ConfigError, match="cannot be read: Is a directory"):
        load_settings(tmp_path)  # MEANDER_CONFIG may name one


def test_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEANDER_STREAMS", "[not json")
    with pytest.raises(ConfigError, match='field "streams"'):
        load_settings()
    monkeypatch.setenv("MEANDER_STREAMS", "[]")
    monkeypatch.setenv("MEANDER_API_PORT", "99999")
    with pytest.raises(
        ConfigError, match=r"api_port \(set by MEANDER_API_PORT\): Input should be less than"
    ):
        load_settings()


@pytest.mark.parametrize(
    ("bootstrap", "problem"),
    [
        ("localhost:abc", "'localhost:abc' is not host:port"),
        ("::::", "'::::' is not host:port"),
        ("a:9092,", "'' is not host:port"),
        ("127.0.0.1:0", "port 0 of '127.0.0.1:0' is not 1-65535"),
        ("kafka:99999", "port 99999 of 'kafka:99999' is not 1-65535"),
    ],
)
def test_a_malformed_bootstrap_address_is_named(
    monkeypatch: pytest.MonkeyPatch, bootstrap: str, problem: str
) -> None:
    """Each made every component wait for Kafka for good, as if the broker were down."""
    monkeypatch.setenv("MEANDER_KAFKA_BOOTSTRAP", bootstrap)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert f"kafka_bootstrap (set by MEANDER_KAFKA_BOOTSTRAP): Value error, {problem}" in str(
        raised.value
    )


@pytest.mark.parametrize("bootstrap", ["kafka-1:9092,kafka-2:9092", "[::1]:9092", "localhost"])
def test_the_addresses_kafka_clients_take_are_accepted(
    monkeypatch: pytest.MonkeyPatch, bootstrap: str
) -> None:
    monkeypatch.setenv("MEANDER_KAFKA_BOOTSTRAP", bootstrap)
    assert load_settings().kafka_bootstrap == bootstrap


def test_unknown_stream_lists_the_known_ones(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="unknown stream 'nope'; configured streams: fraud"):
        load_settings(config_file).stream("nope")


def test_a_misspelt_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEANDER_LOGLEVEL", "DEBUG")
    with pytest.raises(ConfigError, match=r"unknown environment variable.*MEANDER_LOGLEVEL"):
        load_settings()
    monkeypatch.delenv("MEANDER_LOGLEVEL")
    monkeypatch.setenv("MEANDER_LOG_LEVEL", "DEBUG")
    assert load_settings().log_level == "DEBUG"


def test_a_stream_with_no_model_gets_a_linear_champion_and_the_default_search_space() -> None:
    features = {"amount": "numeric", "country": "categorical"}
    stream = StreamConfig(name="s", task="binary", features=features)
    assert stream.model == default_model("binary", features)
    assert "OneHotEncoder" in stream.model  # categories are encoded, not fed to the scaler
    assert stream.candidates == default_candidates("binary", features)
    assert any("HoeffdingAdaptiveTree" in spec for spec in stream.candidates)
    for spec in [stream.model, *stream.candidates]:
        model = build_model(spec)
        model.learn_one({"amount": 3.0, "country": "fr"}, True)
        model.predict_one({"amount": 2.0, "country": "de"})
    regression = StreamConfig(name="r", task="regression", features={"c": "categorical"})
    assert all("LinearRegression" not in s or "OneHotEncoder" in s for s in regression.candidates)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("optional", ["age", "country"])
def test_the_default_models_take_an_event_without_its_optional_features(
    task: str, optional: str
) -> None:
    # compose.Select raised KeyError on an event without one of its features (a gap in a CSV
    # column): the predictor dead-lettered the event, the learner its label.
    features = {
        "amount": {"type": "numeric"},
        "age": {"type": "numeric", "required": optional != "age"},
        "country": {"type": "categorical", "required": optional != "country"},
    }
    stream = StreamConfig(name="s", task=task, features=features)
    labels = {"binary": [True, False], "multiclass": ["a", "b"], "regression": [1.0, 3.0]}[task]
    for spec in [stream.model, *stream.candidates]:
        model = build_model(spec)
        for i in range(120):  # enough for trees to split and use their leaf models
            x = {"amount": float(i), "age": 30.0 + i % 7, "country": "fr" if i % 3 else "de"}
            if i % 2:
                del x[optional]
            model.learn_one(x, labels[i % 2])
        lacking = {"amount": 2.0, "age": 31.0, "country": "de"}
        del lacking[optional]  # meander leaves a missing (null) value out too: clean()
        model.predict_one(lacking)


def test_a_binary_stream_of_two_words_gets_models_that_learn_them() -> None:
    # LogisticRegression int()s a binary label: with classes "no" and "yes" the default
    # champion failed config check ("cannot learn an event ... a numeric step needs numbers").
    from meander.config import Settings
    from meander.models.trial import check_models

    stream = StreamConfig(
        name="s", task="binary", classes=["no", "yes"], features={"amount": "numeric"}
    )
    check_models(Settings(streams=[stream]))
    for spec in [stream.model, *stream.candidates]:
        model = build_model(spec)
        for i in range(40):
            model.learn_one({"amount": float(i)}, "yes" if i > 20 else "no")
        assert model.predict_one({"amount": 35.0}) in {"no", "yes"}


def test_configured_models_and_an_empty_search_space_are_kept() -> None:
    chosen = StreamConfig(
        name="s", task="binary", features={"x": "numeric"}, model="tree.HoeffdingTreeClassifier"
    )
    assert chosen.model == "tree.HoeffdingTreeClassifier" and chosen.candidates == []
    none = StreamConfig(name="s", task="multiclass", features={"x": "numeric"}, candidates=[])
    assert none.candidates == [] and "LogisticRegression" in none.model


@pytest.mark.parametrize(
    ("task", "again", "expected"),
    [
        ("regression", None, 4_000),
        ("binary", None, 0),
        ("multiclass", None, 0),
        ("binary", 900, 900),
    ],
)
def test_a_second_tuning_is_the_default_for_regression_only(
    task: str, again: int | None, expected: int
) -> None:
    learning = {"replay_window": 1_000} | ({} if again is None else {"tune_again_after": again})
    stream = StreamConfig(name="s", task=task, features={"x": "numeric"}, learning=learning)
    assert stream.tune_again_at == expected
    assert stream.kept_labels == max(1_000, expected)


@pytest.mark.parametrize("features", [{"b": "categorical"}, {"a": "numeric", "b": "categorical"}])
def test_the_default_regression_trees_leaves_learn_from_categories(
    features: dict[str, str],
) -> None:
    # Before their first split (50 labels) a tree answers with its one leaf: a mean could not
    # tell the categories apart.
    for spec in default_candidates("regression", features)[:2]:
        model, numbers = build_model(spec), {"a": 1.0} if "a" in features else {}
        for i in range(40):
            b = "x" if i % 2 else "y"
            model.learn_one(numbers | {"b": b}, 10.0 * (b == "x"))
        gap = model.predict_one(numbers | {"b": "x"}) - model.predict_one(numbers | {"b": "y"})
        assert gap > 2.0, spec


def test_the_readme_configuration_passes_config_check(tmp_path: Path) -> None:
    # It configured a scaler over a categorical feature: config check refused it.
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (example,) = re.findall(r"```toml\n(.*?)```", readme, re.S)
    path = tmp_path / "meander.toml"
    path.write_text(example)

    settings = load_settings(path)

    check_models(settings)
    assert [s.name for s in settings.streams] == ["fraud"]
