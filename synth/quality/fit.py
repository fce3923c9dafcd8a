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
    finish_reason: str | None = "stop"

    @cached_property
    def instruction_tokens(self) -> list[str]:
        return _TOKEN.findall(self.instruction.lower())

    @cached_property
    def input_tokens(self) -> list[str]:
        return _TOKEN.findall(self.input.lower())

    @property
    def short(self) -> bool:
        """A bare request, not a prompt that carries its own passage (as T0 and FLAN prompts do): about 60 words."""
        return len(self.instruction) <= 400

    @cached_property
    def target(self) -> str | None:
        """The language a translation task asks for."""
        return translation_target(self.instruction)


_QUOTED = re.compile(r"\"[^\"\n]{2,}\"|“[^”\n]{2,}”|„[^“”\n]{2,}[“”]|«[^»\n]{2,}»|'[^'\n]{6,}'(?!\w)")


def _quoted(text: str) -> list[str]:
    return [m.group()[1:-1].strip() for m in _QUOTED.finditer(text)]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。])\s+", text.strip()) if s]


# ---- echo --------------------------------------------------------------------------------------------------------

_FILLER = frozenset("here is are the a an your my this that of in to it its fixed corrected rewritten revised improved "
                    "updated final summary answer code python output result sure text sentence translation version "
                    "following below in summary so step steps part".split())


def _grams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def _uncovered(tokens: list[str], source: set[tuple[str, ...]], n: int) -> list[str]:
    """The tokens of `tokens` that no n-gram copied from the source covers (a "Step 2" label aside)."""
    covered = [t.isdigit() and i > 0 and tokens[i - 1] in ("step", "part") for i, t in enumerate(tokens)]
    for i in range(len(tokens) - n + 1):
        if tuple(tokens[i:i + n]) in source:
            covered[i:i + n] = [True] * n
    return [t for t, c in zip(tokens, covered) if not c]


def _copies(answer_tokens: list[str], source_tokens: list[str], novel_limit: int) -> bool:
    """The answer reproduces most of the source (70% of its words, in copied runs) and adds no more than filler."""
    n = 3 if len(source_tokens) < 8 else 4
    if len(source_tokens) < n or len(answer_tokens) < max(n, 0.7 * len(source_tokens) - 1):
        return False
    reproduced = 1 - len(_uncovered(source_tokens, _grams(answer_tokens, n), n)) / len(source_tokens)
    novel = [t for t in _uncovered(answer_tokens, _grams(source_tokens, n), n) if t not in _FILLER]
    return reproduced >= 0.7 and len(novel) <= novel_limit


def _plain(text: str) -> str:
    return " ".join(text.replace("```", " ").lower().split())


def _verbatim(answer: str, source: str) -> bool:
    """Character for character (case and spacing aside), one holds the other: an edit that only adds a colon, a
    quote or an emoji is a transformation, not an echo."""
    a, b = _plain(answer), _plain(source)
    return bool(a and b) and (a in b or b in a)


_STOP = frozenset("the a an is are was were be of to in on for and or it this that what which who how why when "
                  "where do does did i you we they he she my your can could would should will with about at by as "
                  "from so me us them there their here sure".split())


_CORRECTION = re.compile(r"\b(?:correct|fix|proofread|edit|grammar|spelling|punctuat\w*|capitali[sz]\w*|typos?)\b", re.I)


def check_echo(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    tokens = answer.tokens
    novel = 0 if task.short and _CORRECTION.search(task.instruction) else config.echo_novel_words
    # (a fix may change a single word, so for one only an unchanged copy is an echo)
    size = len(answer.text)
    if task.input and size >= 0.5 * len(task.input) and _copies(tokens, task.input_tokens, novel) and \
            _verbatim(answer.text, task.input):
        return "repeats the input back"
    if size >= 0.5 * len(task.instruction) and _copies(tokens, task.instruction_tokens, novel):
        return "repeats the instruction back"
    quotes = _quoted(task.instruction) if task.short else []
    for quote in quotes if len(quotes) == 1 else []:      # two quotes or more are options to choose from
        if _copies(tokens, _TOKEN.findall(quote.lower()), novel) and _verbatim(answer.text, quote):
            return "repeats the text quoted in the instruction"
    if task.target:
        shown = _quoted(answer.text)[:1] or answer.lines[:1]
        sources = _quoted(task.instruction) + ([task.input] if task.input else [])
        if shown and any(_fold(shown[0]) == _fold(source) for source in sources):
            return "gives the text to translate back untranslated"
    listing = tokens and len(tokens) <= 12 and task.short and set(tokens) <= set(task.instruction_tokens)
    options = label_options(task.instruction, listed_only=True) if listing else []
    if len(options) >= 2 and tokens and set(tokens) <= {w for o in options for w in o.split()} | {"or", "and"} \
            and len(_found(answer.text, options)) >= 2:
        return "lists the label options instead of choosing one"
    return _restates(answer, task)


_RESTATING = re.compile(r"\b(?:you are asking|you're asking|you (?:would|'d) like me to|you want me to|"
                        r"this is a question about|the question is asking)\b", re.IGNORECASE)


def _restates(answer: Answer, task: Task) -> str | None:
    """An answer of the task's own words (its quotes left out) and nothing else: "Email to landlord about heater"."""
    tokens = answer.tokens
    if len(tokens) > 40 or task.input or len(task.instruction) > 250 or len(task.instruction_tokens) > 25 or \
            re.search(r":\s*\S+(?:\s+\S+){3,}", task.instruction):
        return None                 # only a bare request can be restated; one that carries a text is transformed
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
_TRANSLATING = re.compile(r"\btranslat|\btradu|bersetz", re.IGNORECASE)
_CODE_ONLY = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`|https?://\S+", re.DOTALL)
_NAMES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian", "pt": "Portuguese",
          "nl": "Dutch", "ru": "Russian", "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "ar": "Arabic"}


def _name(code: str | None) -> str:
    return _NAMES.get(code or "", code or "unknown")


def _instruction_languages(text: str) -> set[str | None]:
    """The languages the instruction is in, read leniently: instructions are short. Latin text with no evidence for
    any other profiled language is taken to be English, the language of most instructions; a long prompt that mixes
    languages (English around Portuguese names) counts as each one with a fair share of its function words."""
    text = text[:800]
    lenient = len(text) < 400          # a long prompt has words enough to be told the usual way
    found = guess(text, min_evidence=1.5, margin=1.5) if lenient else guess(text)
    if found.script != "latin":
        return {found.language}
    scores = latin_scores(text)
    top = max(scores.values())
    languages = {lang for lang, score in scores.items() if score >= max(3.0, top / 3)} | {found.language}
    if not found.language and scores["en"] >= top:
        languages.add("en")
    return languages - {None} or {None}


def _answer_language(answer: Answer) -> str | None:
    """The answer's language, told with confidence: from its prose without code and quotes (an English answer may
    quote French), or, when too little prose is left, from the whole text (a rewrite is often all in quotes)."""
    text = answer.text[:3000]
    said = guess(_STRIP_FOR_LANGUAGE.sub(" ", text), min_evidence=4.0, margin=2.5)
    if said.language:
        return said.language
    return guess(_CODE_ONLY.sub(" ", text), min_evidence=5.0, margin=3.0).language


def check_language_mismatch(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    target = task.target
    if target:
        return _translation_mismatch(answer, task, target)
    if task.short and _TRANSLATING.search(task.instruction):
        return None                 # a translation into a language the task does not name: any language may do
    said = _answer_language(answer) if len(answer.tokens) >= 4 else None
    if said is None:
        return None
    asked = _instruction_languages(_STRIP_FOR_LANGUAGE.sub(" ", task.instruction[:1200]))
    if said in asked:
        return None
    requested = requested_language(task.instruction)
    allowed = asked | {requested, guess(task.input[:2000]).language if task.input else None}
    if said in allowed or allowed <= {None}:
        return None
    return f"answers in {_name(said)} to a task in {_name(requested or min(asked - {None}, default=None))}"


def _translation_mismatch(answer: Answer, task: Task, target: str) -> str | None:
    script = SCRIPT_OF.get(target)
    if script:
        counts = script_counts(answer.text)
        present = counts[script] + (counts["han"] if target == "ja" else 0)
        return None if present >= 2 else f"asked for {_name(target)}, but none of the answer is in its script"
    quoted = _quoted(answer.text)
    segment = quoted[0] if quoted else (answer.text if len(answer.lines) == 1 else "")
    said = guess(segment, min_evidence=2.0, margin=2.0).language
    if said and said != target and said not in _instruction_languages(_STRIP_FOR_LANGUAGE.sub(" ", task.instruction)):
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
    if not match or re.search(r"[.!?]\s", instruction[:match.start()]) or len(instruction[:match.start()].split()) > 12:
        return None                 # no pointer, or the text comes first and the pointer after it
    after = instruction[match.end():].lstrip()
    if match.group().lower().startswith("the ") and re.match(r"(?:about|on|of|from|that|which|with|\d)\b", after, re.I):
        return None                 # "the numbers 1 to 8", "the article about remote work": described, not given
    if re.search(r"\b(?:called|named|a|an)\s+\S*\s*(?:file|csv)\b|\.(?:csv|txt|json|py)\b", instruction, re.I):
        return None                 # a file the task names, not an input it lacks
    return f"points at '{match.group().strip()}' but the input is empty"


# ---- label_mismatch -----------------------------------------------------------------------------------------------

_AS_TAIL = re.compile(r"(?:\b(?:as|into|como|comme|als|come|between)\b|:)[ \t]*(?:one of[ \t]*:?[ \t]*)?([^:.?!\n]+)", re.I)
_ARTICLES = re.compile(r"^(?:an?|the|el|la|le|un|une|una|uno|o)\s+", re.I)


def label_options(instruction: str, listed_only: bool = False) -> list[str]:
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
    if not best and not listed_only:
        best = _or_pair(instruction)
    return sorted(set(best), key=lambda o: (-len(o), o))


def _or_pair(instruction: str) -> list[str]:
    """The two sides of the first "X or Y": one word a side, or two where the sides run parallel ("it increases or
    it decreases", "many options or few options") or the second negates the first ("spam or not spam")."""
    if " or " not in instruction:
        return []
    head, tail = instruction.split(" or ", 1)
    before = _ARTICLE_WORDS.sub(" ", " " + head.lower()).split()
    after = _ARTICLE_WORDS.sub(" ", " " + tail.lower()).split()
    before, after = [_fold(w) for w in before[-2:]], [_fold(w) for w in after[:2]]
    if not before or not after or not before[-1] or not after[0]:
        return []
    if len(before) == 2 and len(after) == 2 and (after[1] == before[1] or after[0] == before[0]):
        return [" ".join(before), " ".join(after)]
    if after[0] in ("not", "non") and len(after) == 2:
        return [before[-1], " ".join(after)]
    return [before[-1], after[0]]


_ARTICLE_WORDS = re.compile(r"(?<=\s)(?:an?|the)(?=\s)", re.I)
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
