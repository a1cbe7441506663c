"""Process plumbing shared by the local Kafka and Redis servers.

Free loopback ports, readiness polling against a deadline, starting a server in its own session,
stopping it by pid (SIGTERM, then SIGKILL), and the state file kept by ``python -m meander.infra``.
Linux only: liveness and ownership are read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from meander.exceptions import MeanderError

LOOPBACK = "127.0.0.1"


class InfraError(MeanderError):
    """A local server could not be found, started or stopped; the message says what to do."""


def cache_dir() -> Path:
    """Root of meander's local caches: ``$MEANDER_CACHE_DIR``, else ``<repo>/.cache``."""
    override = os.environ.get("MEANDER_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / ".cache"


def free_port(avoid: Sequence[int] = ()) -> int:
    """A TCP port on loopback that nothing listens on right now, and not one of ``avoid``.

    The port is only free when asked: another process may take it before our server binds it,
    which then fails loudly at start.

    >>> 1024 <= free_port() <= 65535
    True
    """
    while True:
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on loopback ``port``."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_executable(name: str, fallbacks: Sequence[str], hint: str) -> str:
    """Path of ``name`` on PATH or at one of ``fallbacks``; InfraError with ``hint`` if absent."""
    found = shutil.which(name) or next((p for p in fallbacks if os.access(p, os.X_OK)), None)
    if found is None:
        raise InfraError(f"`{name}` was not found on PATH: {hint}")
    return found


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, so parallel test sessions download jars only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def spawn(argv: Sequence[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output appended to ``log_path``.

    The new session keeps a Ctrl-C in the terminal that ran ``up`` from reaching the server, and
    lets the server outlive the Python process that started it.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def poll_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Call ``check`` until it returns True or ``timeout`` seconds pass; return its last answer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The command name in parentheses may contain spaces; the state letter follows it.
    return stat.rpartition(")")[2].split()[0] != "Z"


def pid_argv(pid: int) -> list[str]:
    """The command line ``pid`` runs with, or ``[]`` if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0")[:-1]]


def runs_argv(pid: int, argv: Sequence[str]) -> bool:
    """Whether ``pid`` is alive and still the process started with ``argv`` (not a reused pid)."""
    return pid_alive(pid) and pid_argv(pid) == list(argv)


def stop_pid(pid: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Stop ``pid``: SIGTERM, then SIGKILL if it still runs after ``timeout`` seconds.

    Pass ``proc`` when the process is our child, so that it is reaped rather than left a zombie.
    """
    if proc is not None and proc.poll() is not None:
        return  # already reaped: the pid may belong to someone else by now
    for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone(pid, grace, proc):
            return
    raise InfraError(f"process {pid} survived SIGKILL; look at it with `ps -o pid,stat,cmd {pid}`")


def _wait_gone(pid: int, timeout: float, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is None:
        return poll_until(lambda: not pid_alive(pid), timeout)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def state_path() -> Path:
    """Where ``python -m meander.infra`` records the servers it started."""
    return cache_dir() / "infra" / "state.json"


def read_state() -> dict[str, dict[str, Any]]:
    """The recorded servers by name, or ``{}`` when nothing was recorded."""
    try:
        state: dict[str, dict[str, Any]] = json.loads(state_path().read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InfraError(
            f"cannot read {state_path()} ({exc}); delete it and stop leftover servers by hand"
        ) from exc
    return state


def write_state(state: dict[str, dict[str, Any]]) -> None:
    """Record ``state``, or remove the file when it is empty; readers never see half a file."""
    path = state_path()
    if not state:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    partial.replace(path)


class LocalServer:
    """A server process on loopback that this object starts, watches and stops.

    Subclasses say how to launch it (``_command``) and how to tell it answers (``_ready``).
    ``port=None`` picks a free port; ``data_dir=None`` uses a fresh temporary directory that
    ``stop`` removes, while a given ``data_dir`` is kept so its data survives restarts.
    """

    name = "server"

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = free_port() if port is None else port
        self.data_dir = data_dir
        self.argv: list[str] = []
        self._owns_data_dir = data_dir is None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """What a client connects to."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """Pid of the running server, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the server process started by this object is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        if self.data_dir is None:
            raise InfraError(f"{self.name} has no data directory until it is started; call start()")
        return self.data_dir / f"{self.name}.log"

    def start(self, timeout: float = 60.0) -> Self:
        """Start the server and return once it answers; InfraError if not within ``timeout`` s."""
        if self.running:
            return self
        if port_open(self.port):
            raise InfraError(
                f"{self.name} cannot use port {self.port}: something already listens on "
                f"{LOOPBACK}:{self.port}; stop it or choose another port"
            )
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix=f"meander-{self.name}-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.argv = self._command()
        self._proc = spawn(self.argv, self.log_path, self.data_dir)
        try:
            self._wait_ready(self._proc, timeout)
        except BaseException:
            # Keep the data directory: its log is what explains the failure.
            stop_pid(self._proc.pid, 5.0, self._proc)
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout`` s); remove a temporary data dir."""
        if self._proc is not None:
            stop_pid(self._proc.pid, timeout, self._proc)
            self._proc = None
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"{type(self).__name__}({self.address}, {state})"

    def _command(self) -> list[str]:
        """Prepare the data directory and return the command line that runs the server."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether the server answers a real request."""
        raise NotImplementedError

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready():
            if proc.poll() is not None:
                raise self._failure(f"exited with code {proc.returncode} while starting")
            if time.monotonic() >= deadline:
                raise self._failure(f"did not answer within {timeout:g} s")
            time.sleep(0.2)

    def _failure(self, what: str) -> InfraError:
        return InfraError(
            f"{self.name} on {self.address} {what}; its log {self.log_path} ends with:\n"
            f"{tail(self.log_path)}"
        )
