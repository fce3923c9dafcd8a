"""One settings base for every command: typed fields that carry their own help, range and choices.

    class DedupConfig(Settings):
        threshold: float = setting(0.9, "Drop an item this cosine-similar to a kept one.", min=0, min_open=True, max=1)

The same declaration checks a config file, builds the command's flags (`synth.cli.options`) and fills `--help`.
There is one precedence order, defaults < a `--config` JSON file < flags, and every problem is reported at once:
a wrong type, a name that is no setting, a number out of range (NaN and infinity are never in range), a value that
is not one of the choices, and each command's own cross-checks (`checks()`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError

S = TypeVar("S", bound="Settings")
_MISSING = dataclasses.MISSING


def setting(default: Any = _MISSING, help: str = "", *, min: float | None = None, max: float | None = None,
            min_open: bool = False, choices: tuple[str, ...] | None = None, factory: Any = None,
            flag: str | None = None, cli: bool = True, multiple: bool = False) -> Any:
    """A settings field. `min`/`max` bound a number (`min_open`: strictly above `min`); `choices` fixes a string's
    values; `flag` names the command-line flag (default `--field-name`); `cli=False` keeps it out of the flags;
    `multiple` lets a string flag be given several times (joined with commas)."""
    metadata = {"help": help, "min": min, "max": max, "min_open": min_open, "choices": choices, "flag": flag,
                "cli": cli, "multiple": multiple}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


@dataclass
class Settings:
    """Base of every command's config. Subclasses are dataclasses of `setting()` fields."""

    command: ClassVar[str] = ""

    # ---- building -----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls: type[S], values: dict[str, Any], source: str = "config") -> S:
        """An instance from `values`; unknown names and values of the wrong type are one ConfigError."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: settings must be a JSON object of names and values, "
                              f"not {type(values).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        problems = [f"unknown setting(s) {', '.join(unknown)}"] if unknown else []
        hints = typing.get_type_hints(cls)
        conformed = {}
        for name, value in values.items():
            if name not in fields:
                continue
            ok, fitted = _conform(value, hints[name])
            if ok:
                conformed[name] = fitted
            elif source == "flags":       # a value given on the command line (or as a keyword): name the flag
                problems.append(f"{flag_name(fields[name])} must be "
                                f"{_describe(_not_none(hints[name]), fields[name].metadata.get('choices'))}, "
                                f"not {_show(value)}")
            else:
                problems.append(f"{name} must be {_describe(hints[name], fields[name].metadata.get('choices'))}, "
                                f"not {_show(value)}")
        if problems:
            raise ConfigError(("" if source == "flags" else f"{source}: ") + "; ".join(problems))
        return cls(**conformed)

    @classmethod
    def from_file(cls: type[S], path: str | Path) -> S:
        return cls.from_dict(load_config_file(path), str(path))

    @classmethod
    def resolve(cls: type[S], *, base: "S | dict[str, Any] | None" = None, config_file: str | Path | None = None,
                flags: dict[str, Any] | None = None) -> S:
        """defaults < `base` (a config object, a dict, or the saved config of a resumed run) < `config_file` <
        `flags`, validated."""
        settings = cls.coerce(base) if base is not None else cls()
        if config_file is not None:
            settings = settings.merged(load_config_file(config_file), source=str(config_file))
        return settings.merged(flags or {}).validate()

    @classmethod
    def coerce(cls: type[S], value: "S | dict[str, Any]") -> S:
        """A config object from an instance of this class or a dict of settings."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value, "config")
        raise ConfigError(f"config must be a {cls.__name__} or a dict of settings, not {type(value).__name__}")

    def merged(self: S, overrides: dict[str, Any], source: str = "flags") -> S:
        """A copy with `overrides` applied. None is a value here (it clears an optional setting); the command line
        leaves out the flags that were not given."""
        return type(self).from_dict({**self.to_dict(), **overrides}, source)

    # ---- checking -----------------------------------------------------------------------------------

    def checks(self) -> list[str]:
        """This command's own cross-checks: one message per problem."""
        return []

    def problems(self) -> list[str]:
        found = []
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not _conform(value, hints[field.name])[0]:     # an object built directly, not from a dict
                found.append(f"{flag_name(field)} must be {_describe(hints[field.name], field.metadata.get('choices'))}, "
                             f"not {_show(value)}")
            else:
                found += _field_problems(field, value)
        return found + self.checks()

    def validate(self: S) -> S:
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    # ---- showing and saving ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the defaults."""
        defaults = type(self)().to_dict()
        return {k: v for k, v in self.to_dict().items() if defaults.get(k) != v}

    def summary(self) -> str:
        """One line for the start of a run: the settings that differ from the defaults."""
        changed = self.changed()
        shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in changed.items())
        return f"{self.command} settings: " + (shown or "all defaults")

    def save(self, path: str | Path) -> None:
        from .files import write_json_atomic

        write_json_atomic(Path(path), self.to_dict())


def _field_problems(field: dataclasses.Field, value: Any) -> list[str]:
    meta, flag = field.metadata, flag_name(field)
    if value is None:
        return []
    low, high, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if low is not None and (value <= low if meta.get("min_open") else value < low):
            return [f"{flag} must be {'above' if meta.get('min_open') else 'at least'} {_num(low)}, not {_num(value)}"]
        if high is not None and value > high:
            return [f"{flag} must be at most {_num(high)}, not {_num(value)}"]
    if choices and isinstance(value, str) and value not in choices:
        return [f"{flag} must be one of {', '.join(choices)}, not {value!r}"]
    return []


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """(whether `value` fits `hint`, the value as the field keeps it): an integral number serves as a float, a
    path as a string; NaN and infinity fit no number."""
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
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if hint is str:
        if isinstance(value, os.PathLike):
            return True, os.fspath(value)
        return isinstance(value, str), value
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        if not isinstance(value, (list, tuple)):
            return False, value
        fitted = [_conform(v, item) for v in value]
        return all(ok for ok, _ in fitted), [v for _, v in fitted]
    if origin is dict or hint is dict:
        return isinstance(value, dict), value
    return True, value


def _not_none(hint: Any) -> Any:
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and options:
        return options[0] if len(options) == 1 else typing.Union[tuple(options)]
    return hint


def _describe(hint: Any, choices: tuple[str, ...] | None = None) -> str:
    """`int | str` with choices ("auto",) reads 'an integer or "auto"'."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(option, choices) for option in typing.get_args(hint))
    if hint is str and choices:
        return " or ".join(json.dumps(c) for c in choices)
    if hint is type(None):
        return "null"
    if origin is list:
        return "a list of " + _describe((typing.get_args(hint) or (Any,))[0]).removeprefix("a ").removeprefix("an ") + "s"
    return {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}.get(hint, "an object")


def _show(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return json.dumps(value, default=str)[:60]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The JSON object of settings in `path`. NaN and Infinity, which Python's JSON reader accepts, are refused."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        values = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config file as UTF-8 JSON") from None
    except _NonFinite as exc:
        raise ConfigError(f"{path}: holds {exc.args[0]}, which is not a number synth accepts; give a finite value") from None
    except ValueError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a JSON object of settings")
    return values


class _NonFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NonFinite(name)
