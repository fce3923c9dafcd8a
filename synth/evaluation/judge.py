"""The pairwise judge: a prompt per ordered pair, a strict verdict parser, and the two orders folded into one outcome.

Every pair of answers is judged twice, once in each order. A verdict is a score from answer A's side (A>>B is 2,
A>B 1, A=B 0, B>A -1, B>>A -2); turned to the first contestant's side, the two orders must agree on the sign, or
the pair is a tie whose verdict changed with the order (the judge's position bias).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..prompts import render
from ..teacher.jobs import Job, VerdictError

TEMPLATE = "eval_pairwise"
SCORES = {"A>>B": 2, "A>B": 1, "A=B": 0, "B>A": -1, "B>>A": -2}
ORDERS = ("AB", "BA")           # AB: the first contestant is shown as answer A; BA: as answer B
_VERDICT_LINE = re.compile(r"^[\s*_`#>]*verdict\s*[:：](?P<value>.*)$", re.IGNORECASE)
_VALUE = re.compile(r"^[\s*_`\[(]*(?P<verdict>[AB]\s*(?:>>|>|=)\s*[AB])[\s*_`\])]*"
                    r"(?:\((?P<note>[^()]*)\))?[\s*_`.]*$", re.IGNORECASE)
_ANY_VERDICT = re.compile(r"[AB]\s*(?:>>|>|=|<<|<)\s*[AB]", re.IGNORECASE)
# The embedded judge (SmolLM2-135M) rarely keeps to the reply format on its own; on llama.cpp it decodes under this
# grammar, which admits only one line of reasons (without a colon, so it cannot pass for a verdict line) and then the
# verdict line: its choice among the five verdicts is still its own (and still weak), but it parses. Other judges are
# sent no grammar.
LOCAL_GRAMMAR = r'''root ::= reason "\nVerdict: " verdict
reason ::= [^\n:]{10,300}
verdict ::= "A>>B" | "A>B" | "A=B" | "B>A" | "B>>A"
'''
REFERENCE_BLOCK = ("An expert's reference answer follows. Use it to check facts and results; other wordings and "
                   "approaches can be just as good.\n\n[Reference answer]\n{reference}\n")


def judge_messages(question: str, answer_a: str, answer_b: str, reference: str | None = None
                   ) -> list[dict[str, str]]:
    block = "\n" + REFERENCE_BLOCK.format(reference=reference) + "\n" if reference else "\n"
    text = render(TEMPLATE, question=question, answer_a=answer_a, answer_b=answer_b, reference=block)
    return [{"role": "user", "content": text}]


def parse_verdict(text: str) -> dict[str, Any]:
    """The verdict in a judge's reply: exactly one distinct value on lines `Verdict: X`, X one of SCORES.

    Markdown emphasis, brackets, a closing full stop and one parenthesis of words (`A>B (A is better)`) around the
    value are allowed; anything else is a VerdictError:
    no verdict line, a verdict line whose value is not a verdict, or lines that disagree."""
    found = set()
    for line in text.splitlines():
        head = _VERDICT_LINE.match(line)
        if head is None:
            continue
        value = _VALUE.match(head.group("value"))
        if value is None or _ANY_VERDICT.search(value.group("note") or ""):
            raise VerdictError("bad_verdict", f"a verdict line holds no single verdict: {line.strip()[:80]!r}")
        verdict = re.sub(r"\s+", "", value.group("verdict")).upper()
        if verdict not in SCORES:
            raise VerdictError("bad_verdict", f"{verdict!r} compares an answer with itself")
        found.add(verdict)
    if not found:
        raise VerdictError("no_verdict", "the reply has no line 'Verdict: X'")
    if len(found) > 1:
        raise VerdictError("ambiguous_verdict", f"the reply gives several verdicts: {', '.join(sorted(found))}")
    verdict = found.pop()
    return {"verdict": verdict, "score": SCORES[verdict]}


@dataclass
class Pair:
    """One prompt and the two answers to compare; `first` and `second` name the contestants."""

    id: str
    question: str
    first: str
    second: str
    first_answer: str
    second_answer: str
    reference: str | None = None          # shown to the judge when neither contestant is the reference


def pair_jobs(pairs: list[Pair]) -> list[Job]:
    """Two jobs per pair, one in each order."""
    jobs = []
    for pair in pairs:
        for order in ORDERS:
            a, b = (pair.first_answer, pair.second_answer) if order == "AB" else (pair.second_answer, pair.first_answer)
            jobs.append(Job(f"{pair.id}|{order}", judge_messages(pair.question, a, b, pair.reference),
                            {"pair": pair.id, "order": order, "first": pair.first, "second": pair.second}))
    return jobs


@dataclass
class Outcome:
    pair: str
    result: str              # "win", "tie" or "loss", from the first contestant's side
    margin: int              # the two scores summed from the first contestant's side, -4..4
    changed: bool            # the verdict changed with the order (a tie is then recorded)
    flipped: bool            # ...to the other contestant
    first_shown_favoured: int   # the two scores summed from the side of whichever answer was shown first


def fold(ab: int, ba: int, pair: str = "") -> Outcome:
    """One pair's outcome from its two verdict scores (each from answer A's side, as judged)."""
    first = (ab, -ba)                         # in order BA the first contestant was answer B
    signs = {(s > 0) - (s < 0) for s in first}
    changed = len(signs) > 1
    flipped = signs == {1, -1}
    sign = signs.pop() if not changed else 0
    result = {1: "win", 0: "tie", -1: "loss"}[sign]
    return Outcome(pair, result, sum(first), changed, flipped, ab + ba)


def outcomes(rows: dict[str, dict[str, Any]], pair_ids: list[str]) -> tuple[list[Outcome], dict[str, int]]:
    """Each pair's outcome from the latest judgment rows; pairs missing an answered order are counted by why."""
    found, missing = [], {}
    for pair in pair_ids:
        scores = []
        for order in ORDERS:
            row = rows.get(f"{pair}|{order}")
            if row is None or row.get("status") != "ok":
                reason = "not_judged" if row is None else f"failed: {row.get('reason', 'unknown')}"
                missing[reason] = missing.get(reason, 0) + 1
                break
            scores.append(int(row["result"]["score"]))
        if len(scores) == 2:
            found.append(fold(scores[0], scores[1], pair))
    return found, missing
