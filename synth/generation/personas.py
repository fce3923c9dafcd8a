"""Personas that lead Self-Instruct's bootstrap prompts to more topics (in the spirit of PersonaHub): `--personas FILE`
(one persona a line, or a row with a `persona` or `text` field) or `--personas builtin` (the bundled set)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputFileError
from ..formats import iter_rows
from ..resources import personas_dir

BUILTIN = "builtin"


@dataclass(frozen=True)
class Persona:
    id: str
    text: str


def load_personas(spec: str) -> list[Persona]:
    """The personas named by `spec`: "builtin", or any dataset synth reads."""
    path = personas_dir() / "builtin.jsonl" if spec == BUILTIN else Path(spec)
    personas = []
    for row in iter_rows(path):
        text = row.data.get("persona", row.data.get("text"))
        if not isinstance(text, str) or not text.strip():
            raise row.error("a persona needs a 'persona' (or 'text') string")
        number = row.line if row.line is not None else row.index
        personas.append(Persona(str(row.data.get("id") or f"persona-{number}"), " ".join(text.split())))
    if not personas:
        raise InputFileError(path, "holds no personas")
    return personas
