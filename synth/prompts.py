"""Prompt templates (one file each in prompts/) and the library of Orca system messages."""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import cache

from .errors import PromptError
from .resources import prompts_dir


@cache
def template_text(name: str) -> str:
    path = prompts_dir() / f"{name}.txt"
    if not path.is_file():
        known = ", ".join(template_names())
        raise PromptError(f"no prompt template {name!r}; known templates: {known}")
    return path.read_text(encoding="utf-8")


def template_names() -> list[str]:
    return sorted(p.stem for p in prompts_dir().glob("*.txt"))


def template_hash(name: str) -> str:
    """Short content hash, stored in each record so a changed template is visible in provenance."""
    return hashlib.sha256(template_text(name).encode("utf-8")).hexdigest()[:12]


def render(name: str, **variables: object) -> str:
    """Fill `$variables` in a template. A missing variable is an error, never an empty string."""
    try:
        return string.Template(template_text(name)).substitute(variables)
    except KeyError as exc:
        raise PromptError(f"prompt {name!r} needs variable {exc.args[0]!r}") from None
    except ValueError as exc:
        raise PromptError(f"prompt {name!r} is malformed: {exc}") from None


@dataclass(frozen=True)
class SystemMessage:
    id: str
    text: str
    kinds: tuple[str, ...]


@cache
def system_messages() -> tuple[SystemMessage, ...]:
    from .formats import read_rows

    rows = read_rows(prompts_dir() / "system_messages.jsonl")
    return tuple(SystemMessage(r.data["id"], r.data["text"], tuple(r.data.get("kinds", ()))) for r in rows)


def system_messages_for(kind: str) -> list[SystemMessage]:
    """The messages suited to a task kind; every message when none is."""
    suited = [m for m in system_messages() if kind in m.kinds]
    return suited or list(system_messages())


def system_message(message_id: str) -> SystemMessage:
    for message in system_messages():
        if message.id == message_id:
            return message
    raise PromptError(f"no system message {message_id!r}")
