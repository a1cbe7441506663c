"""Recovery: how soon a SIGKILLed component works again after its restart, on a real Kafka
broker and Redis server.

A deployment of one stream (3 partitions): the producer (endless, paced), a learner, a
predictor, a trainer, a monitor and a notifier, each ``meander run NAME`` in a process of its
own with a stable instance id (static group membership), as docker-compose runs them. Once every
one works, each in turn is SIGKILLed and started again a second later, ``runs`` times; then the
fault test's wave, four of them (``WAVE``) SIGKILLed and started again together, ``runs`` times.
For each restart it reports, from the process's start: ``built`` (the ``built`` log line:
interpreter, imports, connections, the component's construction), ``working`` (its ``working``
log line: joins, the lease, the first fetch), the CPU seconds spent until ``built`` (mostly
imports) and until ``working`` (all the process's threads). A restart is mostly CPU: where
``working`` is far above ``cpu_until_working`` the process waited for a CPU, so machine load
slows every figure and the load average is recorded.

``python -m benchmarks --only recovery [--runs N]``; JSON in artifacts/bench/recovery.json.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from meander.infra.kafka import LocalKafka
from meander.infra.redis import LocalRedis

__all__ = ["main"]

OUT = Path("artifacts/bench/recovery.json")
COMPONENTS = ("learner", "predictor", "trainer", "monitor", "notifier", "producer")
WAVE = ("learner", "predictor", "monitor", "producer")  # restarted together in the fault test
TIMEOUT = 300.0  # seconds a component may take to work before the run gives up on it
STREAM = "recovery"
CONFIG = """\
[producer]
source = "agrawal"
events = 0
rate = 100.0
label_delay = 100
progress = false

[[streams]]
name = "{stream}"
task = "binary"
model = "tree.HoeffdingTreeClassifier"

[streams.features]
salary = {{}}
commission = {{}}
age = {{}}
elevel = {{ type = "categorical" }}
car = {{ type = "categorical" }}
zipcode = {{ type = "categorical" }}
hvalue = {{}}
hyears = {{}}
loan = {{}}
"""


class Deployment:
    """The components, each a ``meander run`` process logging JSON lines to a file."""

    def __init__(self, scratch: Path, kafka: str, redis: str) -> None:
        self.scratch = scratch
        self.config = scratch / "meander.toml"
        self.config.write_text(CONFIG.format(stream=STREAM))
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MEANDER_")}
        self.env = inherited | {
            "MEANDER_KAFKA_BOOTSTRAP": kafka,
            "MEANDER_REDIS_URL": redis,
            "MEANDER_MODEL_SIGNING_KEY": "recovery-benchmark-signing-key-0123",
            "MEANDER_METRICS_PORT": "0",
            "PYTHONHASHSEED": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: dict[str, tuple[subprocess.Popen[bytes], Path, float]] = {}
        self.started = 0

    def start(self, name: str) -> None:
        log = self.scratch / f"{name}-{self.started}.log"
        self.started += 1
        meander = str(Path(sys.executable).parent / "meander")
        with log.open("wb") as sink:
            at = time.time()
            process = subprocess.Popen(
                [meander, "run", name, "--config", str(self.config)],
                env=self.env | {"MEANDER_INSTANCE_ID": name},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = (process, log, at)

    def marks(self, name: str) -> dict[str, float] | None:
        """Seconds from the start of ``name``'s process to its ``built`` and ``working`` log
        lines, and the CPU seconds until each; None until it works."""
        process, log, at = self.processes[name]
        found: dict[str, float] = {}
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            if '"built":true' in line:
                record = json.loads(line)
                found["built"] = _seconds(record["time"]) - at
                found["cpu_until_built"] = float(record["cpu_seconds"])
            elif '"working":true' in line and "built" in found:
                found["working"] = _seconds(json.loads(line)["time"]) - at
                found["cpu_until_working"] = _cpu_seconds(process.pid)
                return found
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; its log: {log}")
        return None

    def wait_working(self, name: str) -> dict[str, float]:
        deadline = time.monotonic() + TIMEOUT
        while (found := self.marks(name)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not working {TIMEOUT:g} s after its start")
            time.sleep(0.1)
        return found

    def kill(self, name: str) -> None:
        process = self.processes[name][0]
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop(self) -> None:
        for process, _, _ in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process, _, _ in self.processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _cpu_seconds(pid: int) -> float:
    """The CPU seconds (user and system, every thread) process ``pid`` has spent so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main(
    runs: int = 3, components: Sequence[str] = COMPONENTS, wave: Sequence[str] = WAVE
) -> dict[str, Any]:
    results: dict[str, Any] = {"cpus": os.cpu_count(), "runs": runs, "load_average": [_load()]}
    alone: dict[str, list[dict[str, float]]] = {name: [] for name in components}
    together: dict[str, list[dict[str, float]]] = {name: [] for name in wave}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        kafka = stack.enter_context(LocalKafka()).bootstrap
        redis = stack.enter_context(LocalRedis()).url
        deployment = Deployment(Path(scratch), kafka, redis)
        stack.callback(deployment.stop)
        for name in COMPONENTS:
            deployment.start(name)
        results["first_start"] = {name: deployment.wait_working(name) for name in COMPONENTS}
        rounds = [[name] for name in components] * runs + ([list(wave)] * runs if wave else [])
        for names in rounds:
            for name in names:
                deployment.kill(name)
            time.sleep(1.0)  # as a supervisor restarts it
            for name in names:
                deployment.start(name)
            figures = alone if len(names) == 1 else together
            for name in names:
                figures[name].append(deployment.wait_working(name))
            results["load_average"].append(_load())
    results["restarts"] = alone
    results["restarts_together"] = together
    results["summary"] = _summary(alone)
    results["summary_together"] = _summary(together)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"seconds from restart (median of {runs}): built / working; CPU-s until built / working")
    for title, summary in (
        ("one at a time", results["summary"]),
        ("together", results["summary_together"]),
    ):
        for name, median in summary.items():
            print(
                f"  {title:13} {name:10} {median['built']:5.1f} / {median['working']:5.1f}   "
                f"{median['cpu_until_built']:4.2f} / {median['cpu_until_working']:4.2f}   "
                f"(slowest working {median['slowest_working']:.1f})"
            )
    loads = results["load_average"]
    print(f"load average {min(loads):.1f}-{max(loads):.1f}; written to {OUT}")
    return results


def _summary(figures: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            **{
                key: round(statistics.median(f[key] for f in found), 1 if "cpu" not in key else 2)
                for key in ("built", "working", "cpu_until_built", "cpu_until_working")
            },
            "slowest_working": round(max(f["working"] for f in found), 1),
        }
        for name, found in figures.items()
        if found
    }


if __name__ == "__main__":
    main()
