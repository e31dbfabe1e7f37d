"""Pydantic validation errors as one :class:`~mrisr.errors.ConfigError` line naming the
dotted key (``smoke.yaml: optim.lr: input should be greater than 0 (got -1)``)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

_UNION_TAG = re.compile(r"^(int|float|str|bool|none|[a-z-]+\[.*\])$")


def _key(loc: tuple[Any, ...]) -> str:
    """Dotted key of a pydantic error location, without union-member tags ("int", ...)."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and _UNION_TAG.match(p))]
    return ".".join(parts) or "(top level)"


def format_validation_error(source: str, err: ValidationError) -> str:
    """The first bad key's errors as one line: ``source: dotted.key: message``."""
    errors = err.errors()
    key = _key(errors[0]["loc"])
    same = [e for e in errors if _key(e["loc"]) == key]  # union members of one field
    e = same[0]
    if e["type"] == "extra_forbidden":
        return f"{source}: {key}: unknown key"
    if e["type"] == "missing":
        return f"{source}: {key}: missing (required)"
    msgs = [str(x["msg"]).removeprefix("Value error, ") for x in same]
    msg = " or ".join(dict.fromkeys(m[:1].lower() + m[1:] for m in msgs))
    sub = re.match(r"^([A-Za-z_][\w.]*): ", msg) if e["type"] == "value_error" else None
    if sub:  # a model validator names the field inside its section
        name = sub.group(1)
        key = name if key == "(top level)" or name.startswith(f"{key}.") else f"{key}.{name}"
        msg = msg[sub.end() :]
    got = e.get("input")
    if e["type"] != "value_error" and not isinstance(got, dict | list):
        msg += f" (got {got!r})"
    more = len(errors) - len(same)
    return f"{source}: {key}: {msg}" + (f" (+{more} more problems)" if more else "")
