"""``describe``: what a frontend needs to build a form for a Python callable."""

from __future__ import annotations

import inspect
import types
from typing import Any

from ..protocol.encoding import import_string

__all__ = ["describe"]


def _annotation(annotation: Any) -> str | None:
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__qualname__
    return str(annotation).replace("typing.", "")


def describe(obj: Any, target: str) -> dict[str, Any]:
    if isinstance(obj, types.ModuleType):
        kind = "module"
    elif inspect.isclass(obj):
        kind = "class"
    elif callable(obj):
        kind = "function"
    else:
        kind = "object"
    try:
        signature: inspect.Signature | None = inspect.signature(obj) if callable(obj) else None
    except (TypeError, ValueError):  # some builtins have no introspectable signature
        signature = None
    parameters = []
    if signature is not None:
        for p in signature.parameters.values():
            parameters.append(
                {
                    "name": p.name,
                    "kind": p.kind.name.lower(),
                    "default": None if p.default is p.empty else p.default,
                    "required": p.default is p.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD),
                    "annotation": _annotation(p.annotation),
                }
            )
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or target
    return {
        "kind": kind,
        "name": name,
        "target": target,
        "import": import_string(obj) if kind != "object" else None,
        "signature": None if signature is None else f"{name}{signature}",
        "parameters": parameters,
        "returns": None if signature is None else _annotation(signature.return_annotation),
        "doc": inspect.getdoc(obj) if kind != "object" else inspect.getdoc(type(obj)),
    }
