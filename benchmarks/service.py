"""The service under load: is the event loop free while clients publish at full speed?

``meander serve`` runs as its own process on a real Kafka broker and Redis server (named by
MEANDER_KAFKA_BOOTSTRAP / MEANDER_REDIS_URL, or started here). Publisher processes post events
as fast as the service answers, first one event per request, then batches; a prober process
asks ``/healthz`` every 10 ms throughout. Written to artifacts/bench/service.json: accepted
events per second and requests per second under each load, and the prober's latency
percentiles idle and under load.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np

from meander.infra.kafka import LocalKafka
from meander.infra.process import free_port
from meander.infra.redis import LocalRedis

OUT = Path("artifacts/bench/service.json")
FEATURES = {f"f{i}": float(i) for i in range(10)}
CONFIG = """
kafka_bootstrap = "{kafka}"
redis_url = "{redis}"
model_signing_key = "benchmark key, long enough to sign model blobs"
log_level = "WARNING"

[service]
anonymous_scopes = ["publish", "read"]

[[streams]]
name = "bench"
task = "binary"
partitions = 3
[streams.features]
{features}
"""


def _publisher(url: str, batch: int, stop: Event, counts: Any) -> None:
    body = "\n".join(json.dumps({"features": FEATURES}) for _ in range(batch)).encode()
    headers = {"Content-Type": "application/x-ndjson"}
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            answer = client.post(f"{url}/v1/streams/bench/events", content=body, headers=headers)
            with counts.get_lock():
                counts[0] += 1
                counts[1] += batch if answer.status_code == 202 else 0
                counts[2] += answer.status_code != 202


def _prober(url: str, seconds: float, out: Any) -> None:
    latencies: list[float] = []
    with httpx.Client(timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.get(f"{url}/healthz").raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    out.put(latencies)


def _percentiles(latencies: list[float]) -> dict[str, float]:
    values = np.asarray(latencies)
    return {
        "probes": len(latencies),
        **{f"p{q}_ms": round(float(np.percentile(values, q)), 2) for q in (50, 95, 99)},
        "max_ms": round(float(values.max()), 2),
    }


def _probe(url: str, seconds: float) -> dict[str, float]:
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    prober = multiprocessing.Process(target=_prober, args=(url, seconds, queue))
    prober.start()
    latencies = queue.get()
    prober.join()
    return _percentiles(latencies)


def load(url: str, batch: int, publishers: int, seconds: float) -> dict[str, Any]:
    """``publishers`` processes posting ``batch`` events per request while the prober probes."""
    stop = multiprocessing.Event()
    counts = multiprocessing.Array("l", 3)
    workers = [
        multiprocessing.Process(target=_publisher, args=(url, batch, stop, counts))
        for _ in range(publishers)
    ]
    for worker in workers:
        worker.start()
    time.sleep(2.0)  # warm-up: connections made, the producer's first metadata fetched
    with counts.get_lock():
        requests_before, events_before = counts[0], counts[1]
    started = time.perf_counter()
    healthz = _probe(url, seconds)
    elapsed = time.perf_counter() - started
    with counts.get_lock():
        requests, events, refused = (
            counts[0] - requests_before,
            counts[1] - events_before,
            counts[2],
        )
    stop.set()
    for worker in workers:
        worker.join(60)
    return {
        "batch": batch,
        "publishers": publishers,
        "seconds": round(elapsed, 1),
        "events_per_second": round(events / elapsed),
        "requests_per_second": round(requests / elapsed),
        "refused_requests": refused,
        "healthz_under_load": healthz,
    }


def _serve(config: Path, port: int, stack: ExitStack) -> str:
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "meander"),
            "serve",
            "-c",
            str(config),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
    )
    stack.callback(server.wait, 30)
    stack.callback(server.terminate)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("meander serve did not become ready within 60 s")
        time.sleep(0.2)


def main(seconds: float = 15.0) -> dict[str, Any]:
    results: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        kafka = os.environ.get("MEANDER_KAFKA_BOOTSTRAP") or (
            stack.enter_context(LocalKafka()).bootstrap
        )
        redis = os.environ.get("MEANDER_REDIS_URL") or stack.enter_context(LocalRedis()).url
        config = Path(scratch) / "service.toml"
        features = "\n".join(f'{name} = {{ type = "numeric" }}' for name in FEATURES)
        config.write_text(CONFIG.format(kafka=kafka, redis=redis, features=features))
        url = _serve(config, free_port(), stack)
        results["healthz_idle"] = _probe(url, min(seconds, 5.0))
        results["single_events"] = load(url, batch=1, publishers=4, seconds=seconds)
        results["batches_of_500"] = load(url, batch=500, publishers=2, seconds=seconds)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {OUT} (command: make bench, or python -m benchmarks --only service)")
    return results


if __name__ == "__main__":
    main()
