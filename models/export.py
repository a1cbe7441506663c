"""Embedded serving: a registry version written as a plain pickle that needs only River to load.

The file is a pickle of the River object itself, checked to hold nothing from meander, so any
Python with the same River version can ``pickle.load`` it. A JSON sidecar (``<file>.json``)
records the stream, version, spec, River version and the file's SHA-256.

>>> import tempfile
>>> from pathlib import Path
>>> from meander.store import memory_store
>>> from meander.models.registry import Registry
>>> from meander.models.signing import Signer
>>> from meander.models.specs import build_model
>>> registry = Registry(memory_store(), "export-doctest", Signer(b"sixteen-byte-key"))
>>> entry = registry.register(build_model("linear_model.LinearRegression"),
...                           spec="linear_model.LinearRegression")
>>> with tempfile.TemporaryDirectory() as folder:
...     path = export_model(registry, entry.version, Path(folder) / "model.pkl")
...     type(load_exported(path)).__name__
'LinearRegression'
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import operator
import os
import pickle
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meander.exceptions import RegistryError
from meander.models import neighbours, trees

if TYPE_CHECKING:
    from meander.models.registry import Registry

__all__ = ["export_model", "load_exported", "sidecar_path"]

# Top-level packages of this project: an exported model must not need any of them to load.
OWN_PACKAGES = frozenset({"meander", "models", "consumers", "producers", "services", "benchmarks"})


def export_model(registry: Registry, version: int | None, path: str | Path) -> Path:
    """Write ``version`` (the champion when None) to ``path`` and its sidecar; returns ``path``."""
    if version is None:
        version = registry.champion()
        if version is None:
            raise RegistryError(
                f"stream {registry.stream!r} has no champion to export; pass a version "
                f"(GET /v1/streams/{registry.stream}/models lists them)"
            )
    model, revision = registry.load(version)
    entry = registry.get(version)
    data = _plain_pickle(_as_river(model), f"version {version} of stream {registry.stream!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = {
        "stream": registry.stream,
        "version": version,
        "revision": revision,
        "spec": entry.spec,
        "river_version": entry.river_version,
        "sha256": hashlib.sha256(data).hexdigest(),
        "exported_at": datetime.now(UTC).isoformat(),
    }
    _write_atomically(path, data)
    _write_atomically(sidecar_path(path), json.dumps(sidecar, indent=2).encode() + b"\n")
    return path


def load_exported(path: str | Path) -> Any:
    """The model in an exported file, after checking its SHA-256 against the sidecar if present.

    Like any pickle, load only files you trust: the sidecar catches corruption, not an attacker
    who can rewrite both files.
    """
    path = Path(path)
    data = path.read_bytes()
    sidecar = sidecar_path(path)
    if sidecar.exists():
        expected = json.loads(sidecar.read_text()).get("sha256")
        actual = hashlib.sha256(data).hexdigest()
        if expected != actual:
            raise RegistryError(
                f"{path} does not match its sidecar {sidecar.name} (sha256 {actual[:12]}... "
                f"instead of {str(expected)[:12]}...): the file was changed or truncated; "
                f"export it again"
            )
    try:
        model = pickle.loads(data)
    except Exception as error:  # a pickle that does not load raises anything at all
        raise RegistryError(
            f"{path} is not a model file (meander export writes them): {type(error).__name__}: "
            f"{str(error)[:200]}"
        ) from None
    if not callable(getattr(model, "predict_one", None)):
        raise RegistryError(
            f"{path} holds an object of type {type(model).__name__!r}, not a River model; "
            "write one with meander export"
        )
    return model


def sidecar_path(path: str | Path) -> Path:
    """Where the JSON description of the exported file at ``path`` lives."""
    path = Path(path)
    return path.with_name(path.name + ".json")


class _PlainPickler(pickle.Pickler):
    """A pickler that notes every object from this project it is asked to write."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.foreign: set[str] = set()

    def persistent_id(self, obj: Any) -> None:
        # Called for every object pickled: a class, function or instance from our own packages
        # would make the file unloadable without meander installed (the wrapper is written as
        # operator.getitem, not as itself).
        if isinstance(obj, _Deepest):
            return None
        owner = obj if isinstance(obj, type) or callable(obj) else type(obj)
        module = getattr(owner, "__module__", None) or ""
        if module.split(".")[0] in OWN_PACKAGES:
            self.foreign.add(f"{module}.{getattr(owner, '__qualname__', '?')}")
        return None


_NOT_STATE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)


class _Deepest:
    """``model``, pickled after the E-BST nodes it holds, deepest first, so that pickling one
    finds its children written already; unpickled, it is the model (``operator.getitem``).

    A Hoeffding regression tree's E-BST is a chain of every value a leaf saw of a feature that
    only grows (a date): pickled from its root, pickle's recursion gave up on it (a few hundred
    nodes), and ``meander export`` of such a model raised RecursionError."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.nodes = [node for root in _ebst_roots(model) for node in _deepest_first(root)]

    def __reduce__(self) -> tuple[Any, ...]:
        return operator.getitem, ((self.nodes, self.model), 1)


def _ebst_roots(model: Any) -> list[Any]:
    """The E-BST nodes reachable from ``model`` without going through another one."""
    from river.tree.splitter.ebst_splitter import EBSTNode

    roots, seen, stack = [], set(), [model]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, _NOT_STATE):
            continue
        seen.add(id(item))
        if isinstance(item, EBSTNode):
            roots.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset | collections.deque):
            stack.extend(item)
        else:
            stack.extend(getattr(item, "__dict__", {}).values())
            for cls in type(item).__mro__:
                slots = getattr(cls, "__slots__", ())
                names = (slots,) if isinstance(slots, str) else slots
                stack.extend(getattr(item, name, None) for name in names)
    return roots


def _deepest_first(root: Any) -> list[Any]:
    order, stack = [], [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(child for child in (node._left, node._right) if child is not None)
    return order[::-1]  # every child after its parent above: reversed, before it


def _plain_pickle(model: Any, what: str) -> bytes:
    buffer = io.BytesIO()
    pickler = _PlainPickler(buffer)
    pickler.dump(_Deepest(model))
    if pickler.foreign:
        raise RegistryError(
            f"{what} holds objects from meander ({', '.join(sorted(pickler.foreign))}), so it "
            f"could not be loaded with River alone; export a model built from a River spec"
        )
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    # A reader never sees half a file: write beside it, flush, then rename over it.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _as_river(model: Any) -> Any:
    """``model`` with River's own classes where building it swapped in faster ones."""
    return trees.as_river(neighbours.as_river(model))
