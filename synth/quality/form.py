"""The form and size an answer should have: ignores_system_form, too_short and too_long.

The system message says what form it asks for (steps, a short first line, notes after a translation, quotes for
every extracted item...); the instruction says how much it asks for ("five ideas", "a 300-word essay", "one word",
"yes or no"). These checks compare the answer with both, and stay quiet when the task names no form or size.
"""

from __future__ import annotations

import re
from typing import Any

from .fit import Task, _quoted, _sentences
from .signals import _LIST_ITEM, _TOKEN, Answer, SignalConfig

# ---- ignores_system_form ------------------------------------------------------------------------------------------

# System messages that ask for more than a bare answer: reasoning, parts, options, notes or edits.
_NEEDS_MORE = frozenset({"step_by_step", "show_math_working", "teacher_guidelines", "choose_and_eliminate",
                         "definition_in_parts", "weigh_pros_cons", "detailed_long_answer", "explain_the_edits",
                         "translation_notes", "short_then_justify", "brainstorm_with_reasons", "explain_like_five",
                         "commented_code"})
_COMMENT = re.compile(r"^\s*(?:#|//|/\*|\*|--|;|<!--)|\s(?:#|//)\s", re.MULTILINE)
_OPINION = re.compile(r"\b(?:honestly|in my (?:opinion|view)|i (?:think|believe|feel)|personally|"
                      r"(?:should|must) (?:copy|follow|be praised))\b", re.IGNORECASE)
_LONG_WORD = re.compile(r"[^\W\d_]{11,}")


def _bare(answer: Answer) -> bool:
    """One line, at most two sentences and a couple of dozen words: the answer alone, no reasoning around it."""
    return len(answer.lines) <= 1 and len(_sentences(answer.text)) <= 2 and len(answer.tokens) <= 25


def check_ignores_system_form(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    form = task.system_message_id
    if form is None:
        return None
    if form in _NEEDS_MORE and _bare(answer):
        return f"a bare answer where the system message ({form}) asks for more"
    check = _FORM_CHECKS.get(form)
    return check(answer) if check else None


def _short_first_line(answer: Answer) -> str | None:
    first = answer.lines[0] if answer.lines else ""
    if len(_TOKEN.findall(first)) > 30:
        return "no short answer line first (short_then_justify)"
    return None


def _quotes_evidence(answer: Answer) -> str | None:
    if not re.search(r"[\"“”„«»]", answer.text):
        return "quotes no evidence from the source (quote_the_evidence)"
    return None


def _commented(answer: Answer) -> str | None:
    blocks = re.findall(r"```[^\n]*\n(.*?)(?:```|\Z)", answer.text, re.DOTALL)
    if not blocks:
        return None
    after = answer.text.rsplit("```", 1)[-1].strip() if answer.text.count("```") >= 2 else ""
    if not any(_COMMENT.search(block) for block in blocks) and len(after.split()) < 5:
        return "code with no comments and no explanation (commented_code)"
    return None


def _reasons_given(answer: Answer) -> str | None:
    items = [line for line in answer.lines if _LIST_ITEM.match(line)]
    if len(items) >= 3 and all(len(_TOKEN.findall(i)) <= 4 and not re.search(r"[:：—–(]| - ", i) for i in items):
        return "a list of ideas with no reasons (brainstorm_with_reasons)"
    return None


def _plain_words(answer: Answer) -> str | None:
    words = _TOKEN.findall(answer.prose)
    if len(words) >= 20 and len(_LONG_WORD.findall(answer.prose)) >= 0.08 * len(words):
        return "long technical words for a five-year-old (explain_like_five)"
    return None


def _no_opinion(answer: Answer) -> str | None:
    match = _OPINION.search(answer.text)
    return f"adds an opinion ('{match.group()}') to a faithful summary" if match else None


_FORM_CHECKS = {"short_then_justify": _short_first_line, "quote_the_evidence": _quotes_evidence,
                "commented_code": _commented, "brainstorm_with_reasons": _reasons_given,
                "explain_like_five": _plain_words, "faithful_summary": _no_opinion}


# ---- too_short ----------------------------------------------------------------------------------------------------

_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
            "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20}
_NUMBER = r"(\d{1,3}|" + "|".join(_NUMBERS) + r")"
_COUNT = re.compile(r"\b(?:list|give|suggest|name|write|provide|brainstorm|generate|come up with|create|share|"
                    r"offer|propose|recommend|summari[sz]e|describe|explain|outline|what are)\b[^.?!\n]{0,40}?\b"
                    + _NUMBER + r"\s+(?:[\w-]+\s+){0,2}?(ways|ideas|names|tips|benefits|bullet points|bullets|"
                    r"points|reasons|examples|questions|taglines|slogans|titles|items|things|facts|suggestions|"
                    r"options|activities|words|synonyms|steps|sentences|lines|places|books|themes|uses|"
                    r"arguments|advantages|disadvantages|mistakes|habits|strategies|causes|jokes|recipes)\b", re.I)
_WORDS_ASKED = re.compile(r"\b(?:at least|about|around|roughly|approximately|of|in)?\s*" + _NUMBER +
                          r"[- ]words?\b(?!\s+(?:that|which|from|in the|of the))", re.I)
_SENTENCES_ASKED = re.compile(r"\b(?:write|compose|draft|give|create|summari[sz]e|explain|describe|answer|respond|"
                              r"reply|tell)\b[^.?!\n]{0,60}?\b" + _NUMBER + r"[- ]sentences?\b", re.I)
_LONG_FORM = re.compile(r"\b(?:story|essay|cover letter|letter|e-?mail|review|article|blog post|speech|report|"
                        r"product description|description|introduction|poem)\b", re.I)
_SHORT_FORM = re.compile(r"\b(?:six|two|three|one|\d)[- ](?:word|sentence|line)|\bhaiku|\bslogan|\btagline|\btitle|"
                         r"\bcaption|\blimerick|\bheadline|\btweet|\bsubject line|\bone[- ]liner|\bshort message|"
                         r"\bone sentence|\bin a sentence", re.I)
_BROAD_QUESTION = re.compile(r"^(?:why|how (?:do|does|did|can|should|could|would)|explain|describe|"
                             r"what (?:are|were) the (?:main )?(?:causes|reasons|differences|effects|benefits))\b",
                             re.I)
_CODE_ASKED = re.compile(r"\b(?:write|create|implement|give me)\s+(?:an?\s+|the\s+|me\s+an?\s+)?(?:[\w+#-]+\s+){0,3}"
                         r"(?:function|class|script|program|query|method|regex|regular expression|snippet)\b"
                         r"(?!\s+names?\b)", re.I)
_CODE_SEEN = re.compile(r"```|`[^`]+`|\bdef |\bfunction\b|\breturn\b|[{};]|=>|\bSELECT\b|\bimport\b|^\s{4}\S|"
                        r"\w\s*=\s*\S|\w\(.*\)", re.M)
_CONDENSE = re.compile(r"\b(?:shorten|shorter|summari[sz]e|condense|one word|title|headline|tweet|under \d+|"
                       r"fewer words|brief|tl;dr)\b", re.I)


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _NUMBERS[text.lower()]


def _items(answer: Answer) -> int:
    listed = sum(bool(_LIST_ITEM.match(line)) for line in answer.lines)
    if listed >= 2:
        return listed
    if len(answer.lines) == 1:
        return max(1, len([p for p in re.split(r"[,;]|\band\b", answer.lines[0]) if p.strip()]))
    return max(listed, len(answer.lines))


def check_too_short(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    fraction, instruction = config.too_short_fraction, task.instruction
    words = len(answer.tokens)
    asked = _WORDS_ASKED.search(instruction) if task.short and "word" in instruction else None
    if asked and _number(asked.group(1)) >= 20 and words < fraction * _number(asked.group(1)):
        return f"{words} words where {asked.group().strip()} were asked for"
    sentences = _SENTENCES_ASKED.search(instruction) if task.short and "sentence" in instruction else None
    wanted = _number(sentences.group(1)) if sentences else 0
    if wanted >= 2 and len(_sentences(answer.text)) <= fraction * wanted:
        return f"{len(_sentences(answer.text))} sentence(s) where {wanted} were asked for"
    count = _COUNT.search(instruction) if task.short else None
    if count and count.group(2).lower() not in ("words", "sentences", "lines") and _number(count.group(1)) >= 2:
        wanted, found = _number(count.group(1)), _items(answer)
        if found <= fraction * wanted:
            return f"{found} item(s) where {wanted} {count.group(2)} were asked for"
    return _too_short_for_kind(answer, task, words)


def _too_short_for_kind(answer: Answer, task: Task, words: int) -> str | None:
    instruction, kind = task.instruction, task.kind
    source = len(_TOKEN.findall(task.input))
    if not task.short:
        return None                 # a prompt with its own passage: its kind says nothing of the answer's size
    if _CODE_ASKED.search(instruction) and not _CODE_SEEN.search(answer.text):
        return "no code where code was asked for"
    if kind == "writing" and _LONG_FORM.search(instruction) and not _SHORT_FORM.search(instruction) and words < 20:
        return f"{words} words for a piece of writing"
    if task.system_message_id == "detailed_long_answer" and words < 30:
        return f"{words} words where the system message asks for a thorough answer"
    if kind in ("advice", "open_qa") and (kind == "advice" or _BROAD_QUESTION.search(instruction)) and words < 5:
        return f"{words} words for an open question"
    if source >= 20 and kind in ("summarization", "translation", "rewriting") and words < 0.15 * source and \
            not (kind != "translation" and _CONDENSE.search(instruction) and kind != "summarization"):
        return f"{words} words for a {source}-word input"
    return None


# ---- too_long -----------------------------------------------------------------------------------------------------

_SHORT_ANSWER = re.compile(r"\b(?:one|single|a)[- ]word\b|\bone sentence\b|\bin a sentence\b|\byes or no\b|"
                           r"\byes/no\b|\btrue or false\b|\bone name\b|\bsynonym\b|\bantonym\b|\bthis word\b|"
                           r"^(?:in )?(?:what|who|when|where|which|how many|how much)\b[^.?!]{0,80}\?$|"
                           r"^(?:is|are|does|do|can|should i)\b[^.?!]{0,80}\?$|(?:^|[.!]\s)should i\b[^.?!]{0,60}\?$",
                           re.IGNORECASE)
_LENGTH_CAPS = {"short_then_justify": 150, "choose_and_eliminate": 250}   # words; the form itself is short


def check_too_long(answer: Answer, task: Task, config: SignalConfig) -> str | None:
    if task.system_message_id in ("detailed_long_answer",):
        return None
    words = len(answer.tokens)
    cap = _LENGTH_CAPS.get(task.system_message_id or "")
    if cap and words > cap:
        return f"{words} words, where its system message asks for a short answer"
    if words < config.too_long_words:
        return None
    reference = task.reference_output.strip()
    if task.is_classification or task.kind == "classification" or (reference and len(reference.split()) <= 3):
        return f"{words} words for a task whose answer is a word or two"
    if _SHORT_ANSWER.search(task.instruction.strip()):
        return f"{words} words for a short-answer question"
    quoted = _quoted(task.instruction)
    if task.target and quoted and len(quoted[0].split()) <= 6 and not task.input:
        return f"{words} words to translate {len(quoted[0].split())} word(s)"
    return None


FORM_CHECKS: dict[str, Any] = {"ignores_system_form": check_ignores_system_form, "too_short": check_too_short,
                               "too_long": check_too_long}
