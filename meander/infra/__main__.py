"""``python -m meander.infra up|down|status``: a local Kafka and Redis that outlive the command.

``up`` prints ``export`` lines on stdout (everything else goes to stderr), so a shell can run
``eval "$(python -m meander.infra up)"``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from meander.infra.kafka import LocalKafka
from meander.infra.process import (
    InfraError,
    LocalServer,
    cache_dir,
    read_state,
    runs_argv,
    state_path,
    stop_pid,
    write_state,
)
from meander.infra.redis import LocalRedis

_SERVERS: dict[str, type[LocalServer]] = {"kafka": LocalKafka, "redis": LocalRedis}
_EXPORTS = {"kafka": "MEANDER_KAFKA_BOOTSTRAP", "redis": "MEANDER_REDIS_URL"}


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m meander.infra", description="Run a local Kafka broker and Redis server."
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--kafka-port", type=int, default=9092)
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each server"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return up({"kafka": args.kafka_port, "redis": args.redis_port}, args.timeout)
        return down() if args.command == "down" else status()
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def up(ports: dict[str, int], timeout: float) -> int:
    """Start whichever server is not already running, record it, and print the exports."""
    state = {name: entry for name, entry in read_state().items() if _alive(entry)}
    started: list[LocalServer] = []
    try:
        for name, port in ports.items():
            if name in state:
                _reuse(name, state[name], port)
                continue
            server = _SERVERS[name](port=port, data_dir=cache_dir() / "infra" / name)
            started.append(server.start(timeout))
            state[name] = _entry(server)
            _say(f"{name}: started, pid {server.pid}, {server.address} (log {server.log_path})")
    except BaseException:
        # All or nothing: a half-started stack would only confuse the next `up`.
        for server in started:
            server.stop()
        raise
    write_state(state)
    for name, variable in _EXPORTS.items():
        print(f"export {variable}={state[name]['address']}")
    return 0


def down() -> int:
    """Stop exactly the processes recorded by ``up`` and forget them."""
    state = read_state()
    for name, entry in state.items():
        if _alive(entry):
            stop_pid(entry["pid"], timeout=20.0)
            _say(f"{name}: stopped pid {entry['pid']}")
        else:
            _say(f"{name}: not running (pid {entry['pid']} is gone or is another program now)")
    if not state:
        _say(f"nothing recorded in {state_path()}; nothing to stop")
    write_state({})
    return 0


def status() -> int:
    """Print what runs; exit 0 only if both servers run."""
    state = read_state()
    for name in _SERVERS:
        entry = state.get(name)
        if entry is not None and _alive(entry):
            print(
                f"{name}: running, pid {entry['pid']}, {entry['address']}, data {entry['data_dir']}"
            )
        else:
            print(f"{name}: not running")
    return 0 if all(name in state and _alive(state[name]) for name in _SERVERS) else 1


def _reuse(name: str, entry: dict[str, Any], port: int) -> None:
    if entry["port"] != port:
        raise InfraError(
            f"{name} already runs on port {entry['port']}, not {port}; "
            "run `python -m meander.infra down` first to move it"
        )
    _say(f"{name}: already running, pid {entry['pid']}, {entry['address']}")


def _alive(entry: dict[str, Any]) -> bool:
    # The command line must match too: after a reboot the pid may belong to anything.
    return runs_argv(int(entry["pid"]), entry["argv"])


def _entry(server: LocalServer) -> dict[str, Any]:
    return {
        "pid": server.pid,
        "port": server.port,
        "address": server.address,
        "data_dir": str(server.data_dir),
        "argv": server.argv,
    }


def _say(message: str) -> None:
    print(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
