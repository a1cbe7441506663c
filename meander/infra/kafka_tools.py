"""Apache Kafka's own console producer and consumer, run from their jars (no distribution).

The jars of ``org.apache.kafka:kafka-tools`` come from Maven Central through
``kafka-tools-pom.xml`` and are cached under ``<cache>/kafka-tools/<version>/libs``.
:meth:`ConsoleTools.scripts` writes the ``bin/kafka-console-*.sh`` scripts a Kafka distribution
has, so that commands written for one run as they are.

>>> ConsoleTools().main_class("kafka-console-producer.sh")
'org.apache.kafka.tools.ConsoleProducer'
"""

from __future__ import annotations

import shlex
from pathlib import Path

from meander.infra.kafka import KAFKA_VERSION
from meander.infra.maven import cached_jars
from meander.infra.process import InfraError, cache_dir, find_executable

__all__ = ["ConsoleTools"]

_POM = Path(__file__).with_name("kafka-tools-pom.xml")
_JDK_HINT = (
    "a JDK 17 or newer is needed to run Kafka's tools (apt-get install openjdk-17-jdk-headless)"
)
_MAIN_CLASSES = {
    "kafka-console-producer.sh": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer.sh": "org.apache.kafka.tools.consumer.ConsoleConsumer",
}


class ConsoleTools:
    """Kafka's console tools at ``version``, as commands and as a distribution's scripts."""

    def __init__(self, version: str = KAFKA_VERSION) -> None:
        self.version = version

    def ensure_jars(self) -> Path:
        """Fetch the tools' jars with Maven unless cached; return the directory holding them."""
        return cached_jars(_POM, cache_dir() / "kafka-tools" / self.version, self.version)

    def main_class(self, script: str) -> str:
        """The Java class behind one of a distribution's scripts."""
        try:
            return _MAIN_CLASSES[script]
        except KeyError:
            known = ", ".join(sorted(_MAIN_CLASSES))
            raise InfraError(f"no tool called {script!r}; there are: {known}") from None

    def command(self, script: str, *arguments: str) -> list[str]:
        """The command that runs ``script`` with ``arguments``, as ``bin/<script>`` would."""
        java = find_executable("java", ["/usr/bin/java"], _JDK_HINT)
        libs = self.ensure_jars()
        return [java, "-Xmx256m", "-cp", f"{libs}/*", self.main_class(script), *arguments]

    def scripts(self, directory: Path) -> Path:
        """Write ``bin/kafka-console-producer.sh`` and ``bin/kafka-console-consumer.sh`` under
        ``directory``, as a Kafka distribution has them; returns the ``bin`` directory."""
        bin_dir = directory / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for script in _MAIN_CLASSES:
            path = bin_dir / script
            command = " ".join(shlex.quote(part) for part in self.command(script))
            path.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
            path.chmod(0o755)
        return bin_dir
