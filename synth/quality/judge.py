"""`synth judge`: an LLM judge that scores every record on rubrics of our own (prompts/judge_*.txt).

    quality      the response, 1-5: correct, helpful, in the form its system message asks for, complete
    complexity   the instruction, 1-6: how much it demands (steps, constraints, reasoning, knowledge)

The judge sees one record at a time, never another record, so no verdict depends on what came before it. Each
verdict is one job of the shared jobs engine (synth.teacher.jobs): cached, rate-limited, retried once per layer,
capped by --max-cost, resumable after a kill, and written to a scores sidecar the moment it ends. A reply that does
not parse is a failure with its raw text, never a default score.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from ..errors import ConfigError, InputFileError
from ..files import FolderLock, write_json_atomic
from ..formats import Example, ShapeError, example
from ..prompts import render, template_hash
from ..settings import setting
from ..teacher.budget import Budget
from ..teacher.jobs import Job, JobsResult, VerdictError, answered_ids, run_jobs, run_with_stop_signals
from ..teacher.session import LOCAL, CallSettings, TeacherSession, check_teacher
from .scores import check_earlier_scores, expected_model, plan_paths, summarize

RUBRICS = ("quality", "complexity")
SCALES = {"quality": (1, 5), "complexity": (1, 6)}
PURPOSE = "judge"
NONE_GIVEN = "(none)"


@dataclass
class JudgeConfig(CallSettings):
    command: ClassVar[str] = "judge"

    judge: str = setting(LOCAL, "The judge: any litellm model string (gpt-4o-mini, openai/NAME with --api-base...); "
                                "'local' for the embedded SmolLM2.")
    rubrics: list[str] = setting(help="Rubrics to score, comma-separated: quality (1-5), complexity (1-6).",
                                 factory=lambda: list(RUBRICS))
    out: str | None = setting(None, "Scores file (default RUN/scores.jsonl for a run folder, DATASET.scores.jsonl "
                                    "beside a dataset).")
    structured_output: str = setting("auto", "Ask for a JSON verdict by schema: auto (where litellm says the model "
                                             "supports it, and the embedded model), on, or off.",
                                     choices=("auto", "on", "off"))
    # A judge should be steady and brief: these two defaults differ from generate's.
    temperature: float = setting(0.0, "Sampling temperature.", min=0, max=2)
    max_tokens: int = setting(300, "Completion tokens per verdict.", min=16, max=1_000_000)

    def checks(self) -> list[str]:
        problems = super().checks()
        unknown = [r for r in self.rubrics if r not in RUBRICS]
        if unknown or not self.rubrics:
            problems.append(f"--rubrics takes {' and/or '.join(RUBRICS)}, not {','.join(unknown) or 'nothing'}")
        elif len(set(self.rubrics)) != len(self.rubrics):
            problems.append("--rubrics names a rubric twice")
        if not self.judge.strip():
            problems.append("--judge cannot be empty")
        return problems


# ---- rubrics: pure -------------------------------------------------------------------------------

def as_example(record: dict[str, Any] | Example) -> Example:
    """A record of any shape synth reads (or an Example) as the Example the rubrics are rendered from."""
    return record if isinstance(record, Example) else example(record)


def render_rubric(rubric: str, record: dict[str, Any] | Example) -> list[dict[str, str]]:
    """The messages that ask the judge for one verdict on one record. A ShapeError when the record lacks what the
    rubric grades (quality needs a response)."""
    if rubric not in SCALES:
        raise ConfigError(f"no rubric {rubric!r}; the rubrics are {', '.join(RUBRICS)}")
    ex = as_example(record)
    text = {"instruction": ex.instruction.strip(), "input": ex.input.strip() or NONE_GIVEN}
    if rubric == "quality":
        if ex.output is None:
            raise ShapeError("no response to grade; judge it with --rubrics complexity alone")
        text.update(system_message=(ex.system or "").strip() or NONE_GIVEN, response=ex.output.strip() or NONE_GIVEN)
    return [{"role": "user", "content": render(f"judge_{rubric}", **text)}]


def verdict_schema(rubric: str, *, bounded: bool = False) -> dict[str, Any]:
    """The JSON schema of a verdict. `bounded` caps the reason's length, for grammar-constrained local models that
    would otherwise be free to write until max_tokens."""
    low, high = SCALES[rubric]
    reason: dict[str, Any] = {"type": "string", **({"maxLength": 300} if bounded else {})}
    return {"type": "object", "properties": {"score": {"type": "integer", "enum": list(range(low, high + 1))},
                                             "reason": reason},
            "required": ["score", "reason"], "additionalProperties": False}


def response_format(model: str, rubric: str, mode: str = "auto") -> dict[str, Any] | None:
    """The structured-output request for `model`, or None to rely on the lenient parser alone. llama.cpp's server
    (the embedded model) takes a schema in a json_object request; the rest take OpenAI's json_schema form."""
    if mode == "off":
        return None
    if model == LOCAL:
        return {"type": "json_object", "schema": verdict_schema(rubric, bounded=True)}
    if mode == "auto" and not _litellm_supports_schema(model):
        return None
    return {"type": "json_schema",
            "json_schema": {"name": f"{rubric}_verdict", "strict": True, "schema": verdict_schema(rubric)}}


def _litellm_supports_schema(model: str) -> bool:
    import litellm

    try:
        return bool(litellm.supports_response_schema(model=model))
    except Exception:   # a model litellm does not know: no schema, the lenient parser reads the reply
        return False


# ---- verdicts: pure ------------------------------------------------------------------------------

_NUMBER = r"[+-]?\d+(?:\.\d+)?"
_OUT_OF = r"\s*(?:/|out\s+of)\s*(\d+)"
_NOT_A_RANGE = r"(?!\w|\.\d|\s*[-\u2013]\s*\d)"        # "Score: 1-5" restates the scale
_LABEL = r"\b(?:score|rating|grade)\b[\"']?\s*(?:\([^)\n]{0,20}\)\s*)?(?:is\b|of\b|[:=\u2013-])?\s*"
_LABELLED = re.compile(rf"(?:{_LABEL}|\b(?:give|rate|score)\s+(?:it|this(?:\s+\w+)?)\s+(?:an?\s+)?)({_NUMBER})"
                       rf"(?:{_OUT_OF})?{_NOT_A_RANGE}", re.I)
_FRACTION = re.compile(rf"(?<![\w./])({_NUMBER}){_OUT_OF}\b", re.I)
_LEADING = re.compile(rf"^\s*({_NUMBER}){_NOT_A_RANGE}(?=\s*(?:[.):,;\u2013-](?!\d)|\s|$))")
_REASON = re.compile(r"\b(?:reason|explanation|justification|rationale)\b[\"']?\s*[:=\u2013-]\s*", re.I)
_SCORE_KEYS = ("score", "rating", "grade")
_REASON_KEYS = ("reason", "explanation", "justification", "rationale")
_THINKING = re.compile(r"<think>.*?</think>", re.S | re.I)
_MAX_OBJECTS = 20          # JSON objects tried per reply, so a reply full of braces stays cheap


def parse_verdict(text: str, rubric: str) -> dict[str, Any]:
    """{"score": int, "reason": str} from a judge's reply: a JSON object (bare, fenced, or inside prose), or text
    such as "Score: 4", "**Rating:** 4/5", "4 out of 5 - ...", "4. reason". Anything else raises VerdictError: no
    score, a score off the rubric's scale, a fraction of another scale, a non-integer, or two different scores."""
    low, high = SCALES[rubric]
    body = _THINKING.sub(" ", text or "").strip()
    if not body:
        raise VerdictError("empty_verdict", "the judge's reply was empty")
    found = _from_json(body)
    if found is None:
        found = _from_text(re.sub(r"[*#`]+", "", body))
    value, scale, reason = found
    if scale is not None and scale != high:
        raise VerdictError("wrong_scale", f"score given out of {scale}; the {rubric} scale is {low} to {high}")
    score = _integer(value)
    if not low <= score <= high:
        raise VerdictError("score_out_of_range", f"score {score} is off the {rubric} scale of {low} to {high}")
    return {"score": score, "reason": " ".join(reason.split())}


def _integer(value: str) -> int:
    if len(value) > 12:         # no scale reaches this far; and int() refuses thousands of digits
        raise VerdictError("score_out_of_range", f"score {value[:12]}... is off every scale")
    number = float(value)
    if not number.is_integer():
        raise VerdictError("not_an_integer", f"score {value} is not a whole number")
    return int(number)


def _from_json(body: str) -> tuple[str, int | None, str] | None:
    decoder = json.JSONDecoder()
    for tries, match in enumerate(re.finditer(r"\{", body)):
        if tries >= _MAX_OBJECTS:
            break
        try:
            obj, _ = decoder.raw_decode(body, match.start())
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        keys = {str(k).lower(): v for k, v in obj.items()}
        key = next((k for k in _SCORE_KEYS if k in keys), None)
        if key is None:
            continue
        reason = next((keys[k] for k in _REASON_KEYS if isinstance(keys.get(k), str)), "")
        return (*_json_score(keys[key]), reason)
    return None


def _json_score(value: Any) -> tuple[str, int | None]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise VerdictError("not_an_integer", f"score {value} is not a whole number")
        return repr(value), None
    if isinstance(value, str):
        match = re.fullmatch(rf"\s*({_NUMBER})(?:{_OUT_OF})?\s*", value, re.I)
        if match:
            return match.group(1), int(match.group(2)) if match.group(2) else None
    raise VerdictError("bad_score", f"the verdict's score is {json.dumps(value)[:40]}, not a number")


def _from_text(body: str) -> tuple[str, int | None, str]:
    for pattern in (_LABELLED, _FRACTION):
        matches = list(pattern.finditer(body))
        if matches:
            return _one_score(matches, body)
    match = _LEADING.match(body)
    if match and not re.search(r"^\s*\d+[.)]\s", body[match.end():], re.M):     # a numbered list is no verdict
        return match.group(1), None, _reason(body, match)
    raise VerdictError("no_score", "no score found in the judge's reply")


def _one_score(matches: list[re.Match], body: str) -> tuple[str, int | None, str]:
    values = {(float(m.group(1)), m.group(2)) for m in matches}
    if len(values) > 1:
        shown = ", ".join(m.group(0).strip() for m in matches[:3])
        raise VerdictError("ambiguous_score", f"the reply gives different scores ({shown})")
    first = matches[0]
    return first.group(1), int(first.group(2)) if first.group(2) else None, _reason(body, first)


def _reason(body: str, score: re.Match) -> str:
    """The judge's reason: what follows a "Reason:" label, else the reply without its score."""
    label = _REASON.search(body)
    if label:
        rest = body[label.end():].strip()
        close = rest.rfind(rest[:1], 1) if rest[:1] in ("'", '"') else -1
        if close > 0 and not rest[close + 1:].strip(" \t\n,}"):      # a quoted value, as in {'reason': '...'}
            return rest[1:close]
        return rest
    if body[:score.start()].strip(" \t\n-.:"):         # the score sits inside the judge's sentence: keep it whole
        return body.strip()
    return body[score.end():].strip().lstrip(".):,;\u2013\u2014- \t\n").strip()


# ---- what is judged ------------------------------------------------------------------------------

@dataclass
class Item:
    id: str
    example: Example


def load_items(data: Path, rubrics: list[str]) -> list[Item]:
    """Every row of the dataset, with the id `synth dedup` and `synth select` give it (its own id, else row-N).
    A row that cannot be judged on every rubric asked for is an InputFileError naming its line."""
    from ..formats import dataset_files
    from ..gate.dedup import read_dataset

    files = dataset_files(data)
    where = files[0] if len(files) == 1 else data
    items = []
    for row in read_dataset(data):
        ex = example(row.row)
        if "quality" in rubrics and ex.output is None:
            raise InputFileError(where, "has no response to grade for the quality rubric; judge rows without "
                                       "answers with --rubrics complexity", row.line)
        items.append(Item(row.id, ex))
    return items


def jobs_for(items: list[Item], rubric: str) -> Iterator[Job]:
    """One job per record, rendered as the engine asks for it (a million records are never rendered at once)."""
    digest = template_hash(f"judge_{rubric}")
    for item in items:
        yield Job(f"{item.id}#{rubric}", render_rubric(rubric, item.example),
                  {"record_id": item.id, "rubric": rubric, "template_hash": digest})


# ---- running -------------------------------------------------------------------------------------

@dataclass
class JudgeResult:
    status: str                        # completed, incomplete, stopped_budget or interrupted
    out: str
    summary_path: str
    answered: int = 0                  # verdicts parsed in this session
    skipped: int = 0                   # answered in an earlier session
    failed: Counter = field(default_factory=Counter)     # this session's failures, by reason
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def cost(self) -> float:
        return float(self.summary.get("usage", {}).get("cost_usd", 0.0))


Progress = Callable[[int, int, str], None]


def judge(data: str | Path, config: JudgeConfig | dict[str, Any] | None = None, *, progress: Progress | None = None,
          log: Callable[[str], None] | None = None, **overrides: Any) -> JudgeResult:
    """Score every record of a run folder or dataset on the rubrics asked for; returns the status, the files
    written and the summary (histograms, failures, cost, and how quality follows response length)."""
    from ..teacher.cache import RequestCache

    config = JudgeConfig.resolve(base=config, flags=overrides)
    plan = plan_paths(data, config)
    api_key = check_teacher(config.judge, config)
    if config.cache:
        RequestCache.check(Path(config.cache))
    items = load_items(plan.data, config.rubrics)
    hashes = {r: template_hash(f"judge_{r}") for r in config.rubrics}
    if log:
        log(config.summary())
    with contextlib.ExitStack() as stack:
        if plan.run is not None:
            stack.enter_context(FolderLock(plan.run))
        check_earlier_scores(plan.out, expected_model(config.judge), hashes)
        cache = RequestCache(Path(config.cache) if config.cache else plan.cache)
        stack.callback(cache.close)
        budget = judge_budget(config.max_cost, plan.ledger)
        stack.callback(budget.close)
        session = partial(TeacherSession, config.judge, config, folder=plan.out.parent, purpose=PURPOSE,
                          api_key=api_key, budget=budget, cache=cache)
        result = JudgeResult("completed", str(plan.out), str(plan.summary))
        for number, rubric in enumerate(config.rubrics):
            step = _step_progress(progress, number * len(items), len(items) * len(config.rubrics), rubric)
            outcome = _judge_rubric(session, config, items, rubric, plan.out, step)
            result.answered += outcome.answered
            result.skipped += outcome.skipped
            result.failed.update(outcome.failed)
            if outcome.stopped:
                result.status = outcome.stopped
                break
        if result.status == "completed" and result.failed:
            result.status = "incomplete"
        result.summary = summarize(plan.out, items, config, budget.tally(PURPOSE), result.status)
        write_json_atomic(plan.summary, result.summary)
    return result


def _judge_rubric(session: Callable[..., TeacherSession], config: JudgeConfig, items: list[Item], rubric: str,
                  out: Path, progress: Callable[[JobsResult], None] | None) -> JobsResult:
    done = answered_ids(out)
    if all(f"{item.id}#{rubric}" in done for item in items):      # nothing to ask: no model is started
        return JobsResult(skipped=len(items))
    extra = {"response_format": fmt} if (fmt := response_format(config.judge, rubric, config.structured_output)) else {}
    with session(extra=extra) as teacher:
        return run_with_stop_signals(
            lambda: run_jobs(teacher, jobs_for(items, rubric), partial(parse_verdict, rubric=rubric), out,
                             progress=progress), [teacher])


def _step_progress(progress: Progress | None, offset: int, total: int, rubric: str):
    """The jobs engine's progress for one rubric, as (verdicts done, verdicts in all, what is happening)."""
    if progress is None:
        return None

    def report(state: JobsResult) -> None:
        failed = sum(state.failed.values())
        progress(offset + state.answered + state.skipped + failed, total, f"{rubric}: {failed} failed")

    return report


def judge_budget(cap: float | None, ledger: Path) -> Budget:
    """The spend ledger, with --max-cost capping the judge's own spending: a run folder's ledger also holds what
    generating it cost, which a judge's cap must not count. Requests a kill left unsettled count, to be safe."""
    budget = Budget.with_ledger(cap, ledger)
    budget.spent = budget.tally(PURPOSE).cost + budget.unsettled
    return budget
