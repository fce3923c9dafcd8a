"""Free quality signals: cheap checks of one answer, each with a named reason, and no model.

    check_response(instruction, input, response, system_message_id=..., ...)  ->  [Signal("truncated", "ends on 'and'")]
    record_signals(record)                                                     the same for a synth record

Degenerate text (`DEGENERATE`: repetition, truncated, empty, non_text, refusal) is checked here; whether the answer
fits its task in `fit.py` (echo, language, the input, the label) and `form.py` (the system message's form, too short,
too long), with the language guesser in `language.py`. Every check is pure: text in, reasons out. `SignalConfig` holds each threshold, which signals run, and which of them reject a
record (`filter`) rather than only flag it; the defaults come from the precision and recall measured on
`tests/data/quality_labelled.jsonl` (`bench/quality.py`, figures in `bench/RESULTS.md`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from ..settings import Settings, setting

SIGNALS = ("repetition", "truncated", "empty", "non_text", "refusal", "echo", "language_mismatch",
           "ignores_system_form", "too_short", "too_long", "missing_input", "label_mismatch")
DEGENERATE = frozenset({"repetition", "truncated", "empty", "non_text", "refusal"})


@dataclass(frozen=True)
class Signal:
    name: str        # one of SIGNALS
    detail: str      # what was seen, in a few words: "the line 'Step 3: ...' 14 times"


@dataclass
class SignalConfig(Settings):
    """Which signals run, which reject a record, and the threshold of each. The defaults are tuned for precision
    first on the labelled set: flagging a good record costs more than missing a bad one."""

    command: ClassVar[str] = "signals"

    enabled: list[str] = setting(list(SIGNALS), "Signals to compute.", factory=lambda: list(SIGNALS))
    filter: list[str] = setting(sorted(DEGENERATE), "Signals that reject a record; the others only flag it.",
                                factory=lambda: sorted(DEGENERATE))
    repetition_copies: float = setting(3.0, "A run of words repeated back to back this many times is a loop.", min=2)
    repetition_min_words: int = setting(12, "...and the repeated run spans at least this many words.", min=2)
    repetition_share: float = setting(0.5, "Share of an answer's word 4-grams that are repeats, above which it loops.",
                                      min=0, min_open=True, max=1)
    truncated_prose_words: int = setting(8, "A last sentence of prose this long with no closing punctuation, in an "
                                            "answer that punctuates the others, is cut off.", min=1)
    non_text_share: float = setting(0.25, "Share of an answer that junk (special tokens, base64, hex, symbols) may "
                                          "take before it is non_text.", min=0, min_open=True, max=1)
    echo_novel_words: int = setting(3, "An answer that copies its task adding at most this many words of its own "
                                       "is an echo.", min=0)
    too_long_words: int = setting(300, "Words above which an answer to a short-answer task is too_long.", min=1)
    too_short_fraction: float = setting(0.5, "At or below this fraction of a requested count or length, too_short.",
                                        min=0, min_open=True, max=1)

    def checks(self) -> list[str]:
        unknown = sorted(set(self.enabled + self.filter) - set(SIGNALS))
        return [f"unknown signal(s) {', '.join(unknown)}; the signals are {', '.join(SIGNALS)}"] if unknown else []

    def rejects(self, signals: list[Signal]) -> list[Signal]:
        """The signals among `signals` that reject the record."""
        return [s for s in signals if s.name in self.filter]


_DEFAULT = SignalConfig()


# ---- one answer, measured once ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+")
_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)]|[a-z][.)]|\([a-z0-9]\))\s+", re.IGNORECASE)


@dataclass
class Answer:
    """A response split the ways the checks read it."""

    text: str                     # stripped
    tokens: list[str]             # lower-cased \w+ runs
    lines: list[str]              # non-empty, stripped
    prose: str                    # code blocks left out

    @classmethod
    def of(cls, response: str) -> "Answer":
        text = response.strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        prose = _CODE_BLOCK.sub(" ", text) if "```" in text or "~~~" in text else text
        return cls(text, _TOKEN.findall(text.lower()), lines, prose)


def check_response(instruction: str, input: str, response: str, *, system_message: str | None = None,
                   system_message_id: str | None = None, finish_reason: str | None = "stop",
                   reference_output: str | None = None, is_classification: bool = False,
                   kind: str | None = None, config: SignalConfig | None = None) -> list[Signal]:
    """Every signal `response` raises as the answer to `instruction` (+ `input`), in the order of SIGNALS."""
    from .fit import Task

    config = config or _DEFAULT
    if system_message_id is None and system_message:
        system_message_id = _library_ids().get(system_message.strip())
    answer = Answer.of(response or "")
    task = Task(instruction or "", input or "", system_message, system_message_id, reference_output or "",
                bool(is_classification), kind, finish_reason)
    found = []
    checks = _checks()
    for name in SIGNALS:
        if name not in config.enabled:
            continue
        detail = checks[name](answer, task, config)
        if detail:
            found.append(Signal(name, detail))
            if name == "empty":       # nothing there: every other signal would only restate it
                break
    return _most_specific(found)


@cache
def _checks() -> dict[str, Any]:
    """Signal name -> check(answer, task, config). fit.py and form.py build on this module, so they join late."""
    from .fit import FIT_CHECKS
    from .form import FORM_CHECKS

    return {**_DEGENERATE_CHECKS, **FIT_CHECKS, **FORM_CHECKS}


# A signal that another one already explains: junk text has no language, and a looping, cut-off, refusing or
# echoing answer ignores its system message's form as a matter of course.
_EXPLAINED_BY = {"language_mismatch": {"non_text"}, "ignores_system_form": set(DEGENERATE) | {"echo"},
                 "repetition": {"non_text"}, "truncated": {"non_text", "repetition"},
                 "too_short": {"non_text", "empty", "repetition"}}


def _most_specific(found: list[Signal]) -> list[Signal]:
    names = {s.name for s in found}
    return [s for s in found if not (_EXPLAINED_BY.get(s.name, set()) & names)]


@cache
def _library_ids() -> dict[str, str]:
    """System message text -> id, for the messages synth ships: an exported dataset keeps the text only."""
    from ..prompts import system_messages

    return {m.text.strip(): m.id for m in system_messages()}


def record_signals(record: dict[str, Any], config: SignalConfig | None = None) -> list[Signal]:
    """The signals of a synth record (see synth/record.schema.json)."""
    task, instance = record.get("task") or {}, record.get("instance") or {}
    system = record.get("system_message") or {}
    provenance = record.get("provenance") or {}
    return check_response(task.get("instruction", ""), instance.get("input", ""), record.get("response", ""),
                          system_message=system.get("text"), system_message_id=system.get("id"),
                          finish_reason=provenance.get("finish_reason", "stop"),
                          reference_output=instance.get("reference_output"),
                          is_classification=bool(task.get("is_classification")), kind=task.get("kind"), config=config)


# ---- empty and non_text ------------------------------------------------------------------------------------------

_ASCII_CLASSES = (("L", re.compile(r"[A-Za-z]")), ("N", re.compile(r"[0-9]")), ("P", re.compile(r"[!-/:-@\[-`{-~]")))
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _categories(text: str) -> dict[str, int]:
    """Non-space characters by Unicode major category (L, N, S, M, P), and "So" (emoji, stars, blocks) apart.
    ASCII punctuation and symbols all count as P; only the non-ASCII characters are looked up one by one."""
    text = text[:4000]
    counts = {name: len(pattern.findall(text)) for name, pattern in _ASCII_CLASSES}
    counts.update({"S": 0, "M": 0, "So": 0})
    for char in _NON_ASCII.findall(text):
        if not char.isspace():
            category = unicodedata.category(char)
            if category[0] in counts:
                counts[category[0]] += 1
            if category == "So":
                counts["So"] += 1
    return counts


def check_empty(answer: Answer, task: Any, config: SignalConfig) -> str | None:
    if answer.tokens and any(c.isalnum() for c in answer.text):
        return None
    cats = _categories(answer.text)
    if cats["L"] or cats["N"] or cats["So"] or cats["S"] + cats["P"] >= 20:   # stars, emoji, a wall of symbols
        return None
    return "no text" if not answer.text else f"only {answer.text[:20]!r}"


_SPECIAL_TOKENS = re.compile(r"<\|[a-z_]{2,20}\|>|</?s>|<unk>|<pad>|<mask>|<eos>|<bos>|\[/?INST\]|<</?SYS>>|"
                             r"<\|?endoftext\|?>", re.IGNORECASE)
_BPE_PIECES = re.compile(r"[ĠĊĉ▁]|âĢ[\u0080-\u017f]?")
_MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]|Â[\u00a0-\u00bf]|â€")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{32,}={0,2}")
_ESCAPES = re.compile(r"\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}")
_LETTERS = re.compile(r"[A-Za-z]")
_URL = re.compile(r"https?://\S+|www\.\S+|\b[\w-]+\.(?:com|org|net|io|dev)/\S*")
_HEX = re.compile(r"^(?:0x)?[0-9a-f]{2,8}[,;]?$", re.IGNORECASE)


def _base64_like(run: str) -> bool:
    return any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)


def check_non_text(answer: Answer, task: Any, config: SignalConfig) -> str | None:
    text = answer.text
    size = len(text) - sum(text.count(c) for c in " \n\t\r")
    if size < 8:
        return None
    share = config.non_text_share
    if text.isascii() and "<" not in text and "\\" not in text and len(_LETTERS.findall(text)) >= 0.6 * size and \
            not _BASE64.search(text):
        return None                 # plain ASCII prose: none of the junk below can be there

    bare = _URL.sub(" ", text)          # links carry ids that look like base64

    for pattern, what in ((_SPECIAL_TOKENS, "special tokens"), (_ESCAPES, "escape codes"),
                          (_BASE64, "base64-like runs"), (_BPE_PIECES, "raw tokenizer pieces")):
        found = (m.group() for m in pattern.finditer(bare))
        if sum(len(g) for g in found if pattern is not _BASE64 or _base64_like(g)) >= share * size:
            return f"{what} make up most of it"
    if len(_MOJIBAKE.findall(text)) >= 3:
        return "mojibake (UTF-8 read as Latin-1)"
    cats = _categories(text)
    size = min(size, sum(cats.values()) - cats["So"])
    if cats["M"] >= 10 and cats["M"] >= 0.5 * cats["L"]:
        return "letters buried under combining marks"
    words = text.split()
    if len(words) >= 8 and sum(bool(_HEX.match(w)) for w in words) >= 0.6 * len(words) and \
            sum(any(c.isalpha() for c in w) for w in words) >= 0.2 * len(words):
        return "a hex dump"
    if cats["L"] < 0.1 * size:
        if cats["N"] >= 0.5 * size:
            return "a stream of digits" if len(words) >= 24 and len(set(words)) <= 3 else None
        if size >= 12 and cats["S"] + cats["P"] >= 0.8 * size:
            return "symbols with no words"
    return None


# ---- repetition ------------------------------------------------------------------------------------------------

def _longest_loop(tokens: list[str], max_period: int = 80) -> tuple[int, int]:
    """(period, repeated length) of the longest back-to-back repeat: tokens[i] == tokens[i + period] for a run."""
    best = (0, 0)
    n = len(tokens)
    for period in range(1, min(max_period, n // 2) + 1):
        run = longest = 0
        for i in range(n - period):
            if tokens[i] == tokens[i + period]:
                run += 1
                if run > longest:
                    longest = run
            else:
                run = 0
        if longest >= period and (longest + period) / period > (best[1] + best[0]) / max(best[0], 1):
            best = (period, longest)
    return best


def _repeat_share(tokens: list[str], n: int = 4) -> float:
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def check_repetition(answer: Answer, task: Any, config: SignalConfig) -> str | None:
    tokens = answer.tokens
    if len(tokens) < config.repetition_min_words:
        return None
    share = _repeat_share(tokens)
    if share < 0.15:                   # no 4-gram comes back often enough to hide a loop
        return None
    period, run = _longest_loop(tokens)
    copies = (run + period) / period if period else 0
    if copies >= config.repetition_copies and run >= config.repetition_min_words:
        unit = " ".join(_loop_unit(tokens, period, run))
        return f"'{unit[:60]}' {copies:.0f} times in a row"
    if share >= config.repetition_share:
        return f"{share:.0%} of its word 4-grams are repeats"
    return _repeated_lines(answer)


def _repeated_lines(answer: Answer) -> str | None:
    """The same line (list numbers aside) three times or more, making up at least 40% of the lines."""
    lines = [_LIST_ITEM.sub("", line).strip().lower() for line in answer.lines]
    lines = [line for line in lines if len(line.split()) >= 3]
    if len(lines) < 4:
        return None
    line, count = Counter(lines).most_common(1)[0]
    repeats = len(lines) - len(set(lines))
    if count >= 3 and repeats >= 0.4 * len(lines):
        return f"the line '{line[:50]}' {count} times"
    return None


def _loop_unit(tokens: list[str], period: int, run: int) -> list[str]:
    for i in range(len(tokens) - period):
        if tokens[i:i + run] == tokens[i + period:i + period + run]:
            return tokens[i:i + period]
    return tokens[:period]


# ---- truncated -------------------------------------------------------------------------------------------------

# Words that do not end a finished sentence: articles, conjunctions, prepositions, auxiliaries, possessives.
_DANGLING = frozenset(
    "a an the and or but nor because although though whereas unless than that which whose whether of to into about "
    "is are was were will would shall should can could may might must my your his her its our their this these "
    "those some every either neither very most y e et und oder ou o der die das le la les el los las il di de du "
    "des".split())
_SPEAKER = re.compile(r"^\W*[A-Z][\w .'-]{0,30}\W*:")
_CLOSERS = set(".!?…)]}\"'»”’*`|>~。！？」』）")


def check_truncated(answer: Answer, task: Any, config: SignalConfig) -> str | None:
    if task.finish_reason == "length":
        return "the teacher stopped at its token limit (finish_reason length)"
    text = answer.text
    if not text:
        return None
    if len(_FENCE.findall(text)) % 2:
        return "ends inside an unclosed code block"
    last_line = answer.lines[-1]
    end = text[-1]
    if end in ",:([{" and not (end == "," and len(last_line.split()) <= 5 and len(answer.lines) > 1):
        return f"ends on {end!r}"   # (a short last line ending in a comma is a letter's sign-off)
    if last_line.startswith("|") and not last_line.endswith("|"):
        return "ends inside a table row"
    if last_line.rfind("(") > last_line.rfind(")") and len(last_line) - last_line.rfind("(") <= 60:
        return "ends inside an open parenthesis"
    if end in _CLOSERS or not (end.isalnum()):
        return None
    words = _TOKEN.findall(last_line.lower())
    if len(answer.tokens) < 6:
        return None                 # a bare label ("No", "A", "more") ends where it likes
    if words and words[-1] in _DANGLING and not re.search(r"\b(?:i|you|we|they)\s+\w+\s+" + re.escape(words[-1]) + r"$",
                                                          last_line.lower()):
        return f"ends on {words[-1]!r}"
    if _LIST_ITEM.match(last_line) or last_line.startswith(("#", "|", ">")) or _SPEAKER.match(last_line):
        return None                 # a list item, table row, heading or line of dialogue may end bare
    *earlier, last_sentence = re.split(r"(?<=[.!?。])\s+", last_line)
    before = " ".join(earlier)
    stops = len(re.findall(r"[.!?。](?:\s|$)", text[:len(text) - len(last_line)] + before)) + bool(before)
    length = len(_TOKEN.findall(last_sentence))
    if length >= config.truncated_prose_words and (stops >= 2 or length >= 12) and stops:
        return f"its last sentence stops mid-way: '...{last_line[-40:]}'"
    return None


# ---- refusal ---------------------------------------------------------------------------------------------------

# Said anywhere in the opening, these refuse; the softer ones below only in a short answer, since a long one that
# starts "I cannot give medical advice, but..." goes on to answer.
_REFUSAL = re.compile(
    r"\bas an ai\b|\bas a language model\b|"
    r"\bi(?:'m| am) sorry,? (?:but )?i (?:can(?:no|')t|can not|am unable|'m unable|am not able|'m not able|"
    r"don't have|do not have)\b|"
    r"\bi apologi[sz]e,? but\b", re.IGNORECASE)
_SOFT_REFUSAL = re.compile(
    r"^(?:sorry,? )?i (?:cannot|can't|can not|must decline|am unable to|'m unable to|am not able to|"
    r"'m not able to)\s+(?!stress|emphasi[sz]e|overstate|wait|believe|imagine|recommend|promise|guarantee|"
    r"think of|say enough)|"
    r"\bi(?:'m| am) not (?:comfortable|able to (?:help|provide|assist|determine|answer))\b|"
    r"\bi (?:do not|don't) feel comfortable\b|"
    r"\bit (?:would not|wouldn't) be appropriate for me\b|"
    r"\bi (?:don't|do not) have (?:the ability|access to|information about|personal (?:opinions|preferences)|"
    r"real-time)\b|"
    r"\bi understand (?:that )?you(?:'re| are) (?:looking for|asking for)\b[^.]*,? but\b|"
    r"\b(?:rather than|instead of) relying on (?:an )?ai\b|"
    r"\bi (?:cannot|can't|can not|won't|will not|am unable to|am not able to) (?:give|provide|offer|help|assist|"
    r"write|answer|create|generate|suggest|extract|summari[sz]e|translate|rewrite|complete|fulfil|fulfill|comply|"
    r"label|determine)\b", re.IGNORECASE)
_REFUSAL_HINT = re.compile(r"\bi\b|\bai\b|sorry|apologi", re.IGNORECASE)
SHORT_ANSWER_WORDS = 80


def check_refusal(answer: Answer, task: Any, config: SignalConfig) -> str | None:
    if not _REFUSAL_HINT.search(answer.text[:600]):
        return None
    head = [line for line in answer.lines[:4]            # a line of dialogue is a character speaking
            if not _SPEAKER.match(line) or line.lower().startswith(("note", "answer"))]
    opening = re.sub(r"[\"“„«][^\"”“»]*[\"”»]", " ", " ".join(head)[:400])   # nor is quoted text the answer
    patterns = (_REFUSAL, _SOFT_REFUSAL) if len(answer.tokens) <= SHORT_ANSWER_WORDS else (_REFUSAL,)
    for sentence in re.split(r"(?<=[.!?])\s+", opening):
        for pattern in patterns:
            match = pattern.search(sentence.strip())
            if match:
                return f"refuses: '{match.group().strip()}'"
    return None


_DEGENERATE_CHECKS = {"repetition": check_repetition, "truncated": check_truncated, "empty": check_empty,
                      "non_text": check_non_text, "refusal": check_refusal}
