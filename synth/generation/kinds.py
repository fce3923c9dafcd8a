"""A task's kind (coding, math, ...) picks the system messages that suit it."""

from __future__ import annotations

import re

KINDS = (
    "writing", "reasoning", "coding", "math", "classification", "extraction", "rewriting",
    "advice", "brainstorming", "open_qa", "summarization", "translation",
)

# Ordered: the first kind whose pattern matches wins.
_RULES: tuple[tuple[str, str], ...] = (
    ("coding", r"\b(code|function|python|javascript|sql|regex|program|script|algorithm|class|bug|compile|api)\b"),
    ("math", r"\b(calculate|compute|solve|equation|sum|product|percent|percentage|probability|integer|number|math|area|average)\b"),
    ("translation", r"\b(translate|translation|in (spanish|french|german|italian|japanese|chinese))\b"),
    ("summarization", r"\b(summari[sz]e|summary|tl;?dr|condense)\b"),
    ("rewriting", r"\b(rewrite|rephrase|paraphrase|edit|proofread|simplify|make .* more|correct the grammar)\b"),
    ("extraction", r"\b(extract|list all|find all|identify the|pull out|which .* mentioned)\b"),
    ("brainstorming", r"\b(brainstorm|ideas|suggest|come up with|list .* ways)\b"),
    ("advice", r"\b(advice|should i|how can i|how do i|tips|recommend)\b"),
    ("reasoning", r"\b(why|explain|reason|logic|puzzle|infer|deduce|compare)\b"),
    ("writing", r"\b(write|compose|draft|poem|story|essay|letter|email|slogan)\b"),
)
_COMPILED = tuple((kind, re.compile(pattern, re.I)) for kind, pattern in _RULES)


def infer_kind(instruction: str, is_classification: bool) -> str:
    if is_classification:
        return "classification"
    for kind, pattern in _COMPILED:
        if pattern.search(instruction):
            return kind
    return "open_qa"
