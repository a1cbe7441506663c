"""The grammar of model specs: text or TOML tables turned into a small tree, never evaluated.

A spec is read with ``ast.parse`` and only a handful of node kinds are accepted: dotted class
paths, calls of them with literal or nested-spec arguments, and ``|`` / ``+`` between specs.
Nothing is imported or constructed here; :mod:`meander.models.specs` resolves and builds the tree.

>>> tree = parse("river.preprocessing.StandardScaler | linear_model.LogisticRegression(l2=0.01)")
>>> render(tree)
'preprocessing.StandardScaler | linear_model.LogisticRegression(l2=0.01)'
>>> render(parse(from_mapping({"class": "drift.ADWIN", "params": {"delta": 0.001}})))
'drift.ADWIN(delta=0.001)'
"""

from __future__ import annotations

import ast
import keyword
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from meander.exceptions import SpecError

__all__ = ["ALLOWED", "Call", "Compose", "Container", "Node", "Value", "from_mapping", "parse"]

ALLOWED = (
    "a spec is a River class path relative to `river` (e.g. `linear_model.LogisticRegression` or "
    "`linear_model.LogisticRegression(l2=0.01)`), optionally joined by `|` (pipeline) or `+` "
    "(union), whose arguments are literals (numbers, strings, booleans, None, lists, tuples, "
    "dicts) or nested specs"
)
MAX_LENGTH = 10_000
_DOTTED = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_LITERAL_TYPES = (int, float, str, bool, type(None))


@dataclass(frozen=True)
class Call:
    """``path(*args, **kwargs)``; ``path`` is relative to ``river``, ``fragment`` is the source."""

    path: tuple[str, ...]
    args: tuple[Value, ...]
    kwargs: tuple[tuple[str, Value], ...]
    fragment: str


@dataclass(frozen=True)
class Compose:
    """``left | right`` (a pipeline) or ``left + right`` (a transformer union)."""

    operator: Literal["|", "+"]
    left: Node
    right: Node
    fragment: str


@dataclass(frozen=True)
class Container:
    """A list, tuple or dict argument whose items may hold nested specs."""

    kind: Literal["list", "tuple", "dict"]
    items: tuple[Value, ...]
    keys: tuple[Value, ...] = ()


Node = Call | Compose
Value = Node | Container | int | float | str | bool | None


def refuse(spec: str, fragment: str, why: str) -> SpecError:
    """The SpecError for ``fragment`` of ``spec``: what was wrong, then what is allowed."""
    return SpecError(
        f"model spec {_short(spec)} is refused at {_short(fragment)}: {why}; {ALLOWED}"
    )


def parse(text: str) -> Node:
    """The tree of spec ``text``; SpecError quoting the offending fragment otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"a model spec must be a non-empty string, got {text!r}; {ALLOWED}")
    if len(text) > MAX_LENGTH:
        raise refuse(text, text[:40], f"it is longer than {MAX_LENGTH} characters")
    try:
        expression = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise refuse(text, error.text or text, f"it is not valid syntax ({error.msg})") from None
    except (RecursionError, MemoryError, ValueError):
        raise refuse(text, text[:40], "it is nested too deeply or holds a null byte") from None
    try:
        return _Reader(text.strip()).spec(expression.body)
    except RecursionError:
        raise refuse(text, text[:40], "it is nested too deeply") from None


class _Reader:
    """Walks one parsed expression; every node kind it does not know is refused."""

    def __init__(self, text: str) -> None:
        self.text = text

    def source(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def spec(self, node: ast.expr) -> Node:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr | ast.Add):
            operator: Literal["|", "+"] = "|" if isinstance(node.op, ast.BitOr) else "+"
            return Compose(operator, self.spec(node.left), self.spec(node.right), self.source(node))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute | ast.Name):
            return Call(self.path(node), (), (), self.source(node))
        raise refuse(self.text, self.source(node), f"{_describe(node)} is not a model spec")

    def call(self, node: ast.Call) -> Call:
        path = self.path(node.func)
        args = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise refuse(self.text, self.source(arg), "*arguments are not allowed")
            args.append(self.value(arg))
        kwargs = []
        for kw in node.keywords:
            if kw.arg is None:
                raise refuse(self.text, self.source(kw), "**arguments are not allowed")
            if kw.arg.startswith("_"):
                raise refuse(self.text, kw.arg, "argument names starting with '_' are not allowed")
            kwargs.append((kw.arg, self.value(kw.value)))
        return Call(path, tuple(args), tuple(kwargs), self.source(node))

    def path(self, node: ast.expr) -> tuple[str, ...]:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            raise refuse(
                self.text, self.source(node), f"{_describe(node)} cannot start a class path"
            )
        parts.append(node.id)
        parts.reverse()
        for part in parts:
            if part.startswith("_"):
                raise refuse(self.text, ".".join(parts), f"{part!r} starts with '_'")
        if parts[0] == "river" and len(parts) > 1:
            parts = parts[1:]
        return tuple(parts)

    def value(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, _LITERAL_TYPES):
                raise refuse(self.text, self.source(node), f"{type(node.value).__name__} literal")
            return node.value  # type: ignore[no-any-return]
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) in (int, float)
        ):
            number = node.operand.value
            assert isinstance(number, int | float)  # checked just above, for the type checker
            return -number if isinstance(node.op, ast.USub) else number
        if isinstance(node, ast.List | ast.Tuple):
            kind: Literal["list", "tuple"] = "list" if isinstance(node, ast.List) else "tuple"
            return Container(kind, tuple(self.value(item) for item in node.elts))
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise refuse(self.text, self.source(node), "**unpacking in a dict is not allowed")
            keys = tuple(self.value(key) for key in node.keys if key is not None)
            if not all(isinstance(key, _LITERAL_TYPES) for key in keys):
                raise refuse(self.text, self.source(node), "dict keys must be literals")
            return Container("dict", tuple(self.value(item) for item in node.values), keys)
        return self.spec(node)


def render(node: Value) -> str:
    """The canonical one-line text of a parsed spec or argument."""
    if isinstance(node, Call):
        arguments = [render(arg) for arg in node.args]
        arguments += [f"{name}={render(value)}" for name, value in node.kwargs]
        path = ".".join(node.path)
        return f"{path}({', '.join(arguments)})" if arguments else path
    if isinstance(node, Compose):
        # `+` binds tighter than `|`; parenthesise only where the tree would otherwise change.
        left, right = render(node.left), render(node.right)
        if node.operator == "+" and isinstance(node.left, Compose) and node.left.operator == "|":
            left = f"({left})"
        if isinstance(node.right, Compose) and (node.operator == "+" or node.right.operator == "|"):
            right = f"({right})"
        return f"{left} {node.operator} {right}"
    if isinstance(node, Container):
        if node.kind == "dict":
            pairs = ", ".join(
                f"{render(k)}: {render(v)}" for k, v in zip(node.keys, node.items, strict=True)
            )
            return f"{{{pairs}}}"
        items = ", ".join(render(item) for item in node.items)
        if node.kind == "tuple":
            return f"({items},)" if len(node.items) == 1 else f"({items})"
        return f"[{items}]"
    return repr(node)


def from_mapping(spec: Mapping[str, Any], where: str = "spec") -> str:
    """The text form of a structured spec: ``{"class": ..., "params": {...}}`` or ``{"steps": []}``.

    ``{"union": [...]}`` joins its items with ``+``. Steps and union items may be strings.
    """
    keys = set(spec)
    if keys == {"steps"} or keys == {"union"}:
        (kind,) = keys
        items = spec[kind]
        if not isinstance(items, list | tuple) or not items:
            raise SpecError(f"{where}.{kind} must be a non-empty list of specs, got {items!r}")
        joiner = " | " if kind == "steps" else " + "
        texts = [_item_text(item, f"{where}.{kind}[{i}]") for i, item in enumerate(items)]
        return joiner.join(f"({text})" for text in texts)
    if "class" in keys and keys <= {"class", "params"}:
        path = spec["class"]
        if not isinstance(path, str) or not _DOTTED.match(path):
            raise SpecError(
                f"{where}.class must be a dotted River class path such as "
                f"'linear_model.LogisticRegression', got {path!r}"
            )
        params = spec.get("params") or {}
        if not isinstance(params, Mapping):
            raise SpecError(f"{where}.params must be a table of arguments, got {params!r}")
        arguments = []
        for name, value in params.items():
            if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
                raise SpecError(f"{where}.params has an invalid argument name {name!r}")
            arguments.append(f"{name}={_param_text(value, f'{where}.params.{name}')}")
        return f"{path}({', '.join(arguments)})"
    raise SpecError(
        f"{where} has keys {sorted(keys)}; a structured spec has 'class' (and optionally "
        f"'params'), or 'steps' (a pipeline), or 'union' (a list of transformers)"
    )


def _item_text(item: Any, where: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        return from_mapping(item, where)
    raise SpecError(f"{where} must be a spec string or table, got {item!r}")


def _param_text(value: Any, where: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where} is {value!r}; only finite numbers are allowed")
    if isinstance(value, _LITERAL_TYPES):
        return repr(value)
    if isinstance(value, list | tuple):
        return f"[{', '.join(_param_text(v, f'{where}[{i}]') for i, v in enumerate(value))}]"
    if isinstance(value, Mapping):
        if {"class", "steps", "union"} & set(value):
            return f"({from_mapping(value, where)})"
        pairs = [
            f"{_param_text(k, where)}: {_param_text(v, f'{where}.{k}')}" for k, v in value.items()
        ]
        return f"{{{', '.join(pairs)}}}"
    raise SpecError(f"{where} is a {type(value).__name__}; {ALLOWED}")


def _describe(node: ast.AST) -> str:
    names = {
        ast.Lambda: "a lambda",
        ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.GeneratorExp: "a generator",
        ast.Call: "a call result",
        ast.Subscript: "a subscript",
        ast.Constant: "a literal",
    }
    return names.get(type(node), f"a {type(node).__name__} expression")


def _short(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")
