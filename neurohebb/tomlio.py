"""A minimal TOML writer for neurohebb's own configs (reading uses the standard `tomllib`).

Why hand-written: the core must run with torch alone on GPU boxes, and our configs only hold
scalars, lists of scalars, tables and arrays of tables. None values are omitted (TOML has no
null; omitted keys fall back to the same defaults).
"""
from __future__ import annotations

import json
import math
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dumps_toml(data: dict[str, Any], prefix: str = "") -> str:
    lines: list[str] = []
    for key, value in data.items():
        if value is None or _is_table(value) or _is_table_array(value):
            continue
        lines.append(f"{key} = {_scalar(value)}")
    for key, value in data.items():
        name = f"{prefix}{key}"
        if _is_table(value):
            lines += ["", f"[{name}]", dumps_toml(value, f"{name}.").rstrip("\n")]
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{name}]]", dumps_toml(item, f"{name}.").rstrip("\n")]
    return "\n".join(line for line in lines) .lstrip("\n") + "\n"
