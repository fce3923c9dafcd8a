"""Self-Instruct's heuristic filters for machine-made instructions. Each failure has a named reason."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

DEFAULT_BLACKLIST = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to", "video", "audio", "flowchart", "diagram", "photo", "photograph",
)


@dataclass
class FilterConfig:
    min_words: int = 4          # fewer words than this is "too_short" (Self-Instruct drops <= 3)
    max_words: int = 150
    blacklist: tuple[str, ...] = DEFAULT_BLACKLIST
    banned_prefixes: tuple[str, ...] = ("Write a program",)
    reject_punctuation_start: bool = True
    reject_non_ascii_start: bool = True
    enabled: bool = True
    _patterns: list[tuple[str, re.Pattern]] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.blacklist = tuple(self.blacklist)
        self.banned_prefixes = tuple(self.banned_prefixes)
        self._patterns = [(w, re.compile(rf"\b{re.escape(w)}\b", re.I)) for w in self.blacklist]


def filter_reason(instruction: str, config: FilterConfig) -> str | None:
    """The name of the first filter the instruction fails, or None when it passes them all."""
    if not config.enabled:
        return None
    text = instruction.strip()
    words = len(text.split())
    if words < config.min_words:
        return "too_short"
    if words > config.max_words:
        return "too_long"
    for word, pattern in config._patterns:
        if pattern.search(text):
            return f"blacklisted_keyword:{word}"
    for prefix in config.banned_prefixes:
        if text.lower().startswith(prefix.lower()):
            return "banned_prefix:" + prefix.lower().replace(" ", "_")
    first = text[0]
    if config.reject_punctuation_start and first in string.punctuation:
        return "starts_with_punctuation"
    if config.reject_non_ascii_start and not first.isascii():
        return "starts_with_non_ascii"
    return None
