"""What every command module shares: the typer app, the two consoles, and flags made from a settings class.

A command declares only what is not a setting (a positional dataset, --resume, --overwrite, --config); every field
of its settings class becomes a flag with that field's help, so a flag can never drift from its setting.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console

from ..settings import Settings, flag_name

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Make explained instruction-tuning data with teacher LLMs, and check it before training.")
err = Console(stderr=True)
out = Console()

CONFIG_OPTION = typer.Option(None, "--config", help="JSON file of settings (snake_case names); flags override it.")


def say(line: str) -> None:
    """One line on stderr, printed as given (no markup, no wrapping)."""
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def tell(line: str) -> None:
    """One line on stdout."""
    out.print(line, markup=False, highlight=False, soft_wrap=True)


def settings_command(name: str, settings: type[Settings], *, skip: tuple[str, ...] = ()) -> Callable:
    """Register `function` as command `name`, with its own parameters followed by one flag per setting.

    The function takes its own parameters plus `**flags`: the settings given on the command line, by name; a flag
    that was not given is left out, so a config file's value stands."""

    def register(function: Callable) -> Callable:
        own = [p for p in inspect.signature(function).parameters.values() if p.kind != p.VAR_KEYWORD]
        own_names = {p.name for p in own}
        fields = [f for f in dataclasses.fields(settings)
                  if f.metadata.get("cli", True) and f.name not in skip and f.name not in own_names]
        declared = set(settings.__dict__.get("__annotations__", {}))
        fields.sort(key=lambda f: f.name not in declared)        # the command's own settings before shared ones
        hints = typing.get_type_hints(settings)
        params = own + [_parameter(f, hints[f.name]) for f in fields]
        lists = {f.name for f in fields if typing.get_origin(_strip_none(hints[f.name])) is list}
        multiple = {f.name for f in fields if f.metadata.get("multiple")}
        numbers_or_words = {f.name for f in fields
                            if typing.get_origin(_strip_none(hints[f.name])) in (typing.Union, types.UnionType)}

        def command(**given: Any) -> Any:
            flags = {f.name: given.pop(f.name) for f in fields}
            flags = {k: v for k, v in flags.items() if v is not None and v != []}
            for key in multiple & set(flags):                  # given several times: one comma-separated value
                flags[key] = ",".join(flags[key])
            for key in lists & set(flags):
                flags[key] = [item.strip() for item in flags[key].split(",") if item.strip()]
            for key in numbers_or_words & set(flags):
                flags[key] = int(flags[key]) if flags[key].strip().isdigit() else flags[key]
            return function(**given, **flags)

        command.__signature__ = inspect.Signature(params)           # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__ = function.__doc__
        command.__name__ = function.__name__
        app.command(name)(command)
        return function

    return register


def _strip_none(hint: Any) -> Any:
    """`T` for `T | None`; any other hint as it is."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _parameter(field: dataclasses.Field, hint: Any) -> inspect.Parameter:
    kind = _strip_none(hint)
    help_text = field.metadata.get("help", "")
    default = field.default if field.default is not dataclasses.MISSING else None
    if field.default_factory is not dataclasses.MISSING:                  # type: ignore[misc]
        default = field.default_factory()                                  # type: ignore[misc]
    if typing.get_origin(kind) is list:
        kind, shown = str, ",".join(default or [])
    elif typing.get_origin(kind) in (typing.Union, types.UnionType):    # a number or a word ("16" or "auto")
        kind, shown = str, default
    else:
        shown = default
    if field.metadata.get("multiple"):
        kind = list[str]
    if shown not in (None, "", []):
        help_text = f"{help_text} (default {shown})"
    flag = flag_name(field)
    if kind is bool:
        decls = [f"{flag}/--no-{flag.removeprefix('--')}"]
    else:
        decls = [flag]
    option = typer.Option(None, *decls, help=help_text, show_default=False)
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[kind])


def path_text(path: Optional[Path]) -> Optional[str]:
    return None if path is None else str(path)


class ProgressBar:
    """A rich progress bar that appears with the first update, after set-up has succeeded."""

    def __init__(self, label: str, *, terminal_only: bool = False):
        self.label, self.bar = label, None
        self.off = terminal_only and not err.is_terminal

    def __enter__(self) -> "ProgressBar":
        return self

    def __call__(self, done: int, total: int | None, info: str = "") -> None:
        if self.off:
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=err)
            self.task = self.bar.add_task(self.label, total=total, info="")
            self.bar.start()
        self.bar.update(self.task, completed=min(done, total) if total else done, total=total, info=info)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
