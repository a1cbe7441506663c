"""A real Apache Kafka broker (KRaft: broker and controller in one JVM) on loopback.

The broker's jars come from Maven Central through ``kafka-pom.xml`` and are cached under
``<cache>/kafka/<version>/libs``: no Kafka distribution and no Docker, only a JDK and Maven.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from meander.infra.maven import cached_jars
from meander.infra.process import (
    LOOPBACK,
    InfraError,
    LocalServer,
    cache_dir,
    find_executable,
    free_port,
    port_open,
)

__all__ = ["KAFKA_VERSION", "LocalKafka"]

KAFKA_VERSION = "4.1.1"
_POM = Path(__file__).with_name("kafka-pom.xml")
_JDK_HINT = "a JDK 17 or newer is needed to run Kafka (apt-get install openjdk-17-jdk-headless)"

# WARN keeps the log short enough that the tail quoted in a start failure shows the cause.
_LOG4J2_YAML = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
"""


class LocalKafka(LocalServer):
    """One Kafka broker that is also its own KRaft controller, for development and tests.

    A started broker accepts PLAINTEXT clients on ``bootstrap`` and creates topics on first use.
    It is used as a context manager, or with ``start()`` and ``stop()``::

        with LocalKafka() as kafka:
            producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)

    >>> LocalKafka(port=9092).bootstrap
    '127.0.0.1:9092'
    """

    name = "kafka"

    def __init__(
        self, port: int | None = None, data_dir: Path | None = None, version: str = KAFKA_VERSION
    ) -> None:
        super().__init__(port, data_dir)
        self.version = version
        # The controller quorum listens on a second port that clients never see.
        self.controller_port = free_port(avoid=[self.port])

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap_servers`` value for clients: ``127.0.0.1:<port>``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def address(self) -> str:
        """Same as ``bootstrap``."""
        return self.bootstrap

    def ensure_jars(self) -> Path:
        """Fetch the broker's jars with Maven unless cached; return the directory holding them."""
        return cached_jars(_POM, cache_dir() / "kafka" / self.version, self.version)

    def _command(self) -> list[str]:
        assert self.data_dir is not None  # set by start()
        java = find_executable("java", ["/usr/bin/java"], _JDK_HINT)
        libs = self.ensure_jars()
        config = self.data_dir / "server.properties"
        config.write_text(
            _server_properties(self.port, self.controller_port, self.data_dir / "kraft")
        )
        log4j = self.data_dir / "log4j2.yaml"
        log4j.write_text(_LOG4J2_YAML)
        classpath = ["-cp", f"{libs}/*"]
        if not (self.data_dir / "kraft" / "meta.properties").exists():
            _format_storage([java, *classpath], config)
        return [
            java,
            "-Xms256m",
            "-Xmx1g",
            f"-Dlog4j2.configurationFile={log4j}",
            *classpath,
            "kafka.Kafka",
            str(config),
        ]

    def _ready(self) -> bool:
        # A refused TCP connection is the common case while the JVM boots, and is much cheaper
        # than an admin client that retries for its whole timeout.
        if not port_open(self.port):
            return False
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=3000, bootstrap_timeout_ms=3000
            )
        except KafkaError:
            return False
        try:
            return bool(admin.describe_cluster().get("brokers"))
        except KafkaError:
            return False
        finally:
            admin.close()


def _format_storage(java_and_classpath: list[str], config: Path) -> None:
    command = [
        *java_and_classpath,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        _cluster_id(),
        "-c",
        str(config),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise InfraError(
            f"formatting Kafka storage with {config} failed (exit {done.returncode}); "
            f"delete its data directory and retry:\n{done.stdout}{done.stderr}"
        )


def _cluster_id() -> str:
    """A random 22-character base64url cluster id, as ``kafka-storage random-uuid`` prints."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these too: they read as command-line options
            return text


def _server_properties(port: int, controller_port: int, log_dir: Path) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOOPBACK}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        # One broker: every internal topic must make do with a single replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Tests join consumer groups often; the default 3 s delay would slow each of them.
        "group.initial.rebalance.delay.ms": "0",
        # The log cleaner's buffer lives on the heap for good: at its default 128 MiB it held
        # the old generation above the collector's marking threshold, so every young pause
        # began a marking cycle and a remark pause followed (8 pauses, 1.1 s in all, in one
        # benchmark round on a loaded machine; 3 young pauses, 0.28 s, with 16 MiB). A broker
        # of this size compacts a few small topics.
        "log.cleaner.dedupe.buffer.size": str(16 * 2**20),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())
