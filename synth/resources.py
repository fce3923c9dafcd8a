"""Where the bundled prompts/, seeds/ and schema live: inside the wheel, or at the top of a source checkout."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def bundled_dir(name: str) -> Path:
    """Return the bundled folder `name` (prompts, seeds, evals, personas), from the installed wheel or the checkout."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"synth is installed without its {name}/ folder; reinstall it")


def prompts_dir() -> Path:
    return bundled_dir("prompts")


def seeds_dir() -> Path:
    return bundled_dir("seeds")


def evals_dir() -> Path:
    return bundled_dir("evals")


def personas_dir() -> Path:
    return bundled_dir("personas")


def schema_path() -> Path:
    return _PACKAGE / "record.schema.json"


def cache_dir() -> Path:
    """Where synth keeps what it builds once and reuses (the default student, fast embedders, benchmark indexes):
    ~/.cache/synth, or $SYNTH_CACHE_DIR."""
    return Path(os.environ.get("SYNTH_CACHE_DIR") or Path.home() / ".cache" / "synth")
