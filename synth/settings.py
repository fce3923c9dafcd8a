"""Settings dataclasses from JSON: unknown names and values of the wrong type are one-line errors, not tracebacks."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from .errors import ConfigError


def from_dict(cls: type, values: dict[str, Any], source: str) -> Any:
    """An instance of the settings dataclass `cls` from `values`, each checked against its field's type."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    return cls(**{name: _checked(value, hints[name], name, source) for name, value in values.items()})


def _checked(value: Any, hint: Any, name: str, source: str) -> Any:
    ok, value = _conform(value, hint)
    if not ok:
        raise ConfigError(f"{source}: {name} must be {_describe(hint)}, not {json.dumps(value, default=str)[:60]}")
    return value


def _conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """(whether `value` fits `hint`, the value as the field keeps it: an integral JSON number for a float field)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, conformed = _conform(value, option)
            if ok:
                return True, conformed
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is Any:
        return True, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if hint is str:
        return isinstance(value, str), value
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        ok = isinstance(value, list) and all(_conform(v, item)[0] for v in value)
        return ok, value
    if origin is dict or hint is dict:
        return isinstance(value, dict), value
    return True, value


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is list:
        return "a list of " + _describe((typing.get_args(hint) or (Any,))[0]).removeprefix("a ").removeprefix("an ") + "s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, "an object")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The JSON object of settings in `path`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config file as UTF-8 JSON") from None
    except ValueError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a JSON object of settings")
    return values
