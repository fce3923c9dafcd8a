"""Keep API keys out of everything synth writes or prints."""

from __future__ import annotations

import os

_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")


def secret_values() -> list[str]:
    """Values of environment variables that look like credentials, longest first."""
    values = {v for k, v in os.environ.items() if k.upper().endswith(_SUFFIXES) and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    for value in secret_values():
        if value in text:
            text = text.replace(value, "[redacted]")
    return text
