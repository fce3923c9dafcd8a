"""Does the answer fit its task? The free signals that read the task as well as the answer: echo,
language_mismatch, ignores_system_form, too_short, too_long, missing_input and label_mismatch.

Each check takes the measured `Answer` (signals.py), the `Task` and the `SignalConfig`, and returns what it saw or
None. They are tuned to stay quiet when unsure: a near miss (a grammar fix that keeps most words, a one-word label,
a translation into the language asked for) must not be flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .language import (LANGUAGE_NAMES, SCRIPT_OF, guess, latin_scores, requested_language, script_counts,
                       translation_target)
from .signals import _TOKEN, Answer, SignalConfig


@dataclass
class Task:
    instruction: str
    input: str
    system_message: str | None
    system_message_id: str | None
    reference_output: str
    is_classification: bool
    kind: str | None

    @cached_property
    def instruction_tokens(self) -> list[str]:
        return _TOKEN.findall(self.instruction.lower())

    @cached_property
    def input_tokens(self) -> list[str]:
        return _TOKEN.findall(self.input.lower())

    @property
    def short(self) -> bool:
        """A bare request, not a prompt that carries its own passage (as T0 and FLAN prompts do)."""
        return len(self.instruction_tokens) <= 60


_QUOTED = re.compile(r"\"[^\"\n]{2,}\"|“[^”\n]{2,}”|„[^“”\n]{2,}[“”]|«[^»\n]{2,}»|'[^'\n]{6,}'(?!\w)")


def _quoted(text: str) -> list[str]:
    return [m.group()[1:-1].strip() for m in _QUOTED.finditer(text)]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。])\s+", text.strip()) if s]


# ---- echo --------------------------------------------------------------------------------------------------------

_FILLER = frozenset("here is are the a an your my this that of in to it its fixed corrected rewritten revised improved "
                    "updated final summary answer code python output result sure text sentence translation version "
                    "following below in summary so step steps".split())


def _grams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def _uncovered(tokens: list[str], source: set[tuple[str, ...]], n: int) -> list[str]:
    """The tokens of `tokens` that no n-gram copied from the source covers."""
    covered = [False] * len(tokens)
    for i in range(len(tokens) - n + 1):
        if tuple(tokens[i:i + n]) in source:
            covered[i:i + n] = [True] * n
    return [t for t, c in zip(tokens, covered) if not c]


def _copies(answer_tokens: list[str], source_tokens: list[str], config: SignalConfig) -> bool:
    """The answer reproduces most of the source (70% of its words, in copied runs) and adds no more than filler."""
    n = 3 if len(source_tokens) < 8 else 4
    if len(source_tokens) < n or len(answer_tokens) < max(n, 0.7 * len(source_tokens) - 1):
        return False
    reproduced = 1 - len(_uncovered(source_tokens, _grams(answer_tokens, n), n)) / len(source_tokens)
    novel = [t for t in _uncovered(answer_tokens, _grams(source_tokens, n), n)
             if t not in _FILLER and not (t.isdigit() and len(t) <= 2)]
    return reproduced >= 0.7 and len(novel) <= config.echo_novel_words


_STOP = frozenset("the a an is are was were be of to in on for and or it this that what which who how why when "
                  "where do does did i you we they he she my your can could would should will with about at by as "
                  "from so me us them there their here sure".split())


def check_echo(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    tokens = answer.tokens
    if task.input and _copies(tokens, task.input_tokens, config):
        return "repeats the input back"
    if _copies(tokens, task.instruction_tokens, config):
        return "repeats the instruction back"
    for quote in _quoted(task.instruction):
        if _copies(tokens, _TOKEN.findall(quote.lower()), config):
            return "repeats the text quoted in the instruction"
    if translation_target(task.instruction):
        shown = _quoted(answer.text)[:1] or answer.lines[:1]
        sources = _quoted(task.instruction) + ([task.input] if task.input else [])
        if shown and any(_fold(shown[0]) == _fold(source) for source in sources):
            return "gives the text to translate back untranslated"
    options = label_options(task.instruction) if len(tokens) <= 12 else []
    if len(options) >= 2 and tokens and set(tokens) <= {w for o in options for w in o.split()} | {"or", "and"} \
            and len(_found(answer.text, options)) >= 2:
        return "lists the label options instead of choosing one"
    return _restates(answer, task)


_RESTATING = re.compile(r"\b(?:you are asking|you're asking|you (?:would|'d) like me to|you want me to|"
                        r"this is a question about|the question is asking)\b", re.IGNORECASE)


def _restates(answer: Answer, task: Task) -> str | None:
    """An answer of the task's own words (its quotes left out) and nothing else: "Email to landlord about heater"."""
    tokens = answer.tokens
    if len(tokens) > 40 or not task.short:
        return None
    if _RESTATING.search(answer.text):
        return "restates the task without doing it"
    unquoted = _QUOTED.sub(" ", task.instruction).lower()
    asked = {t.rstrip("s") for t in _TOKEN.findall(unquoted) if t not in _STOP}
    content = [t for t in tokens if t not in _STOP]
    share = sum(t.rstrip("s") in asked for t in content) / len(content) if content else 0
    if (len(content) >= 6 and share >= 0.8) or (len(content) >= 5 and share >= 0.95):
        return "restates the task without doing it"
    return None


# ---- language_mismatch --------------------------------------------------------------------------------------------

_STRIP_FOR_LANGUAGE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`|\"[^\"\n]*\"|“[^”\n]*”|„[^“”\n]*[“”]|«[^»\n]*»|"
                                 r"(?<![*\w])\*[^*\n]+\*(?!\*)|https?://\S+", re.DOTALL)
_CODE_ONLY = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`|https?://\S+", re.DOTALL)
_NAMES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian", "pt": "Portuguese",
          "nl": "Dutch", "ru": "Russian", "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "ar": "Arabic"}


def _name(code: str | None) -> str:
    return _NAMES.get(code or "", code or "unknown")


def _instruction_language(text: str) -> str | None:
    """The instruction's language, read leniently: instructions are short. Latin text with no evidence for any
    other profiled language is taken to be English, the language of most instructions."""
    text = text[:1500]
    found = guess(text, min_evidence=1.5, margin=1.5)
    if found.language or found.script != "latin":
        return found.language
    scores = latin_scores(text)
    return "en" if scores["en"] >= max(scores.values()) else None


def _answer_language(answer: Answer) -> str | None:
    """The answer's language, told with confidence: from its prose without code and quotes (an English answer may
    quote French), or, when too little prose is left, from the whole text (a rewrite is often all in quotes)."""
    said = guess(_STRIP_FOR_LANGUAGE.sub(" ", answer.text), min_evidence=4.0, margin=2.5)
    if said.language:
        return said.language
    return guess(_CODE_ONLY.sub(" ", answer.text), min_evidence=5.0, margin=3.0).language


def check_language_mismatch(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    target = translation_target(task.instruction)
    if target:
        return _translation_mismatch(answer, task, target)
    said = _answer_language(answer)
    if said is None:
        return None
    allowed = {_instruction_language(_STRIP_FOR_LANGUAGE.sub(" ", task.instruction)), requested_language(task.instruction)}
    if task.input:
        allowed.add(guess(task.input[:2000]).language)
    if said in allowed or allowed <= {None}:
        return None
    asked = next((lang for lang in allowed if lang), None)
    return f"answers in {_name(said)} to a task in {_name(asked)}"


def _translation_mismatch(answer: Answer, task: Task, target: str) -> str | None:
    script = SCRIPT_OF.get(target)
    if script:
        counts = script_counts(answer.text)
        present = counts[script] + (counts["han"] if target == "ja" else 0)
        return None if present >= 2 else f"asked for {_name(target)}, but none of the answer is in its script"
    quoted = _quoted(answer.text)
    segment = quoted[0] if quoted else (answer.text if len(answer.lines) == 1 else "")
    said = guess(segment, min_evidence=2.0, margin=2.0).language
    if said and said not in (target, _instruction_language(_STRIP_FOR_LANGUAGE.sub(" ", task.instruction))):
        return f"asked for {_name(target)}, translated into {_name(said)}"
    return None


# ---- missing_input -----------------------------------------------------------------------------------------------

_POINTS_AT_INPUT = re.compile(
    r"\b(?:the|this|these|my|following|given|attached|above)\s+(?:following\s+|given\s+|short\s+|attached\s+)?"
    r"(?:paragraphs?|text|passage|sentences?|e-?mail|message|article|code|function|snippet|list|numbers|table|"
    r"review|tweet|statement|argument|recipe|essay(?: introduction)?|introduction|story|poem|data|document|report|"
    r"letter|notes|transcript|announcement|memo|conversation|dialogue|excerpt|sms|comment|headline|program|script|"
    r"equation|words|query|post|description|speech|draft|abstract|summary|bio|resume|cv)\b"
    r"(?:\s+(?:below|above|provided))?|\b(?:below|provided below|as follows)\b[:.]?\s*$",
    re.IGNORECASE)


def check_missing_input(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    if task.input.strip():
        return None
    instruction = task.instruction.strip()
    if len(instruction.split()) > 40 or "\n" in instruction or _quoted(instruction) or \
            re.search(r":\s*\S+(?:\s+\S+){2,}", instruction):
        return None                 # the text it points at is in the instruction itself
    match = _POINTS_AT_INPUT.search(instruction)
    if not match or len(instruction[:match.start()].split()) > 12:
        return None                 # no pointer, or the text comes first and the pointer after it
    after = instruction[match.end():].lstrip()
    if match.group().lower().startswith("the ") and re.match(r"(?:about|on|of|from|that|which|with|\d)\b", after, re.I):
        return None                 # "the numbers 1 to 8", "the article about remote work": described, not given
    if re.search(r"\b(?:called|named|a|an)\s+\S*\s*(?:file|csv)\b|\.(?:csv|txt|json|py)\b", instruction, re.I):
        return None                 # a file the task names, not an input it lacks
    return f"points at '{match.group().strip()}' but the input is empty"


# ---- label_mismatch -----------------------------------------------------------------------------------------------

_AS_TAIL = re.compile(r"(?:\b(?:as|into|como|comme|als|come|between)\b|:)\s*(?:one of\s*:?\s*)?([^:.?!\n]+)", re.I)
_OR_PAIR = re.compile(r"((?:\b(?:not|non)[ -])?[\w'-]+) or (?:an? |the )?((?:not |non-)?[\w'-]+(?: [\w'-]+)?)", re.I)
_ARTICLES = re.compile(r"^(?:an?|the|el|la|le|un|une|una|uno|o)\s+", re.I)


def label_options(instruction: str) -> list[str]:
    """The labels a classification task offers: "(A) ... (B) ..." letters, "as X, Y or Z", "one of: X, Y",
    "X or not X"; folded to lower case, longest first."""
    letters = re.findall(r"\(([A-Ea-e])\)", instruction)
    if len(set(letters)) >= 2:
        return sorted({x.lower() for x in letters})
    best: list[str] = []
    for match in _AS_TAIL.finditer(instruction):
        pieces = [_ARTICLES.sub("", p.strip(" *\"'")) for p in re.split(r",|\bor\b|\bo\b|\bou\b|\boder\b|/", match.group(1))]
        pieces = [_fold(p) for p in pieces if p.strip()]
        if len(pieces) >= 2 and all(0 < len(p.split()) <= 3 for p in pieces) and len(pieces) > len(best):
            best = pieces
    if not best:
        match = _OR_PAIR.search(instruction)
        if match:
            right = _ARTICLES.sub("", match.group(2))
            if not right.lower().startswith(("not ", "non-")):
                right = right.split()[0]
            best = [_fold(match.group(1)), _fold(right)]
    return sorted(set(best), key=lambda o: (-len(o), o))


_MARKER = re.compile(r"\b(?:category|label|answer|classification|sentiment|verdict|emotion|final answer)\b"
                     r"(?:\s+is)?\s*[:\-]\s*(.+)", re.I)


def _found(text: str, options: list[str]) -> list[str]:
    """The options named in `text`; a longer option ("not spam") hides the shorter one inside it ("spam")."""
    folded, found = " " + _fold(text) + " ", []
    for option in options:
        if len(option) == 1:
            hit = re.search(r"\(" + option + r"\)|^\W*" + option + r"\W*(?:[).:]|$)", text.strip(), re.I)
        else:
            hit = f" {option} " in folded
            folded = folded.replace(f" {option} ", " # ")
        if hit:
            found.append(option)
    return found


def chosen_label(response: str, options: list[str], reference: str) -> str | None:
    """The label the response settles on: after a "Label:" marker, on a short first line or first sentence, or in
    the last sentence that names exactly one label. None when it cannot be told."""
    candidates = sorted(set(options) | {_fold(reference)}, key=lambda o: (-len(o), o))
    lines = [line for line in response.strip().splitlines() if line.strip()]
    places = [m.group(1) for m in _MARKER.finditer(response)]
    if lines and len(_TOKEN.findall(lines[0])) <= 8:
        places.append(lines[0])
    sentences = _sentences(response)
    if sentences and len(_TOKEN.findall(sentences[0])) <= 12:
        places.append(sentences[0])
    places += [s for s in reversed(sentences[-3:]) if len(_found(s, candidates)) == 1][:1]
    for place in places:
        found = _found(place, candidates)
        if len(found) == 1:
            return found[0]
    return None


def check_label_mismatch(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    reference = task.reference_output.strip()
    if not reference or not (task.is_classification or task.kind == "classification"):
        return None
    if len(reference.split()) > 4:
        return None
    options = label_options(task.instruction) or _implied_options(reference)
    chosen = chosen_label(answer.text, options, reference)
    if chosen is None or chosen == _fold(reference):
        return None
    return f"answers '{chosen}', the reference says '{reference}'"


def _implied_options(reference: str) -> list[str]:
    """Labels a task implies without listing them: the other answer of yes/no or true/false, other languages."""
    folded = _fold(reference)
    for pair in (["yes", "no"], ["true", "false"]):
        if folded in pair:
            return pair
    if folded in LANGUAGE_NAMES:
        return sorted({name for name, code in LANGUAGE_NAMES.items() if name.isascii() and len(name) > 4})
    return []


def _fold(text: str) -> str:
    return " ".join(_TOKEN.findall(text.lower()))


FIT_CHECKS: dict[str, Any] = {"echo": check_echo, "language_mismatch": check_language_mismatch,
                              "missing_input": check_missing_input, "label_mismatch": check_label_mismatch}
