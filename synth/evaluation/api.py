"""`synth.evaluate(...)`: did the student get better? Answers, a pairwise judge in both orders, the numbers, a page.

    EVAL/ (default STUDENT/evals/NAME)
      eval_config.json   the resolved settings
      answers.jsonl      each model's answer to each prompt: tokens, seconds, finish_reason
      judgments.jsonl    each judge call: the pair, the order, the verdict (or the failure and its raw text)
      summary.json       win/tie/loss with intervals, position bias, length view, ROUGE-L, reference loss, degeneracy
      report.html        one self-contained page
      answers.meta.json  the references' loss under each model, and how the answers were made (device, tokens/s)
      cache.sqlite, spend.jsonl, run.lock   the judge's request cache, its spend ledger, the folder's lock

A rerun with the same settings goes on where the last one stopped: answers are reused, judgments already made are
skipped, and a judge call paid for before a kill comes back from the cache.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, InputFileError, RunFolderError
from ..files import (FolderLock, FolderSwap, JsonlAppender, read_complete_lines, read_json_object, refuse_overlap,
                     write_json_atomic, write_text_atomic)
from ..formats import write_rows
from ..teacher.jobs import latest_rows, run_jobs, run_with_stop_signals
from ..teacher.session import CACHE_FILE, LOCAL, TeacherSession, check_teacher
from .config import CONFIG_FILE, RESUMABLE, EvalConfig
from .judge import LOCAL_GRAMMAR, Pair, pair_jobs, parse_verdict
from .summary import REFERENCE, answer_text, assemble
from .tasks import BUNDLED, EvalTask, bundled_tasks_path, choose, held_out_split, load_task_file

ANSWERS, JUDGMENTS, SUMMARY, REPORT = "answers.jsonl", "judgments.jsonl", "summary.json", "report.html"
ANSWERS_META = "answers.meta.json"
OWN_ENTRIES = {CONFIG_FILE, ANSWERS, ANSWERS_META, JUDGMENTS, SUMMARY, REPORT, CACHE_FILE, f"{CACHE_FILE}-wal",
               f"{CACHE_FILE}-shm", "spend.jsonl", "run.lock"}
Progress = Callable[[str, int, int], None]


@dataclass
class EvalResult:
    out: Path
    status: str                    # completed, incomplete (some pairs unjudged), stopped_budget or interrupted
    mode: str                      # base, teacher or students
    first: str                     # the contestant the rates are about ("tuned", or the first student)
    second: str
    wins: int
    ties: int
    losses: int
    win_rate: float | None         # ties count half
    win_rate_ci95: list[float]
    summary: dict[str, Any] = field(default_factory=dict)


def evaluate(students: str | Path | list[str | Path] | None = None, config: EvalConfig | dict[str, Any] | None = None,
             *, overwrite: bool = False, log: Callable[[str], None] | None = None, progress: Progress | None = None,
             **overrides: Any) -> EvalResult:
    """Judge a student against its base (default), the references (`against="teacher"`) or another student.

    `synth.evaluate("students/general", judge="gpt-4o")`, `synth.evaluate(["students/a", "students/b"])`.
    A rerun on the same folder with the same settings goes on where the last one stopped; other settings there
    are refused unless `overwrite`.
    """
    say = log or (lambda _: None)
    if students is not None:
        listed = [students] if isinstance(students, (str, Path)) else list(students)
        overrides["students"] = [str(Path(s)) for s in listed]
    config = EvalConfig.resolve(base=config, flags=overrides)
    config = config.merged({"students": [str(Path(s)) for s in config.students]}).validate()
    from .answers import contestants_for

    contestants = contestants_for(config.mode, [Path(s) for s in config.students])
    api_key = check_teacher(config.judge, config)
    tasks, source = pick_tasks(config, say)
    out = Path(config.out) if config.out else default_out(config)
    _refuse_unsafe_out(out, config)
    swap = _prepare(out, config, overwrite)
    lock = FolderLock(out)
    if swap is not None:
        with FolderLock(out):               # an evaluation still running there is never moved aside
            pass
    try:
        if swap is not None:
            swap.begin()
            _carry_cache(swap, out, config)
        out.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        config.save(out)
        say(config.summary())
        say(f"eval: {len(tasks)} prompts from {source['source']}; {' vs '.join(c.name for c in contestants)}"
            + (" vs reference" if config.mode == "teacher" else "") + f"; judge {config.judge}; out {out}")
        answers, losses, runtime = _answers(out, tasks, contestants, config, say)
        if swap is not None:
            swap.commit()                   # the new evaluation has its answers: the old folder can go
        first, second = contestants[0].name, REFERENCE if config.mode == "teacher" else contestants[-1].name
        judged = _judge(out, config, tasks, answers, first, second, api_key, say, progress)
        return _finish(out, config, tasks, answers, losses, runtime, source, first, second, judged)
    finally:
        lock.release()
        if swap is not None:
            swap.rollback()                 # a no-op once committed; else the old evaluation comes back whole


def default_out(config: EvalConfig) -> Path:
    """STUDENT/evals/NAME, NAME from the opponent, the judge and the prompts."""
    opponent = {"base": "base", "teacher": "teacher"}.get(config.mode) or Path(config.students[1]).name
    tasks = Path(config.tasks).stem if config.tasks and config.tasks != BUNDLED else (config.tasks or "")
    name = "-".join(p for p in (f"vs-{opponent}", config.judge, tasks) if p)
    return Path(config.students[0]) / "evals" / re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")


def pick_tasks(config: EvalConfig, say: Callable[[str], None]) -> tuple[list[EvalTask], dict[str, Any]]:
    """--tasks, else the first student's held-out split (head to head: when the second never trained on it),
    else the bundled set; then --limit, and for --against teacher only the tasks with a reference."""
    source: dict[str, Any]
    if config.tasks == BUNDLED or config.tasks is None:
        found = None if config.tasks == BUNDLED else _held_out(config, say)
        if found is None:
            tasks, source = load_task_file(bundled_tasks_path()), {"source": "bundled", "path": str(bundled_tasks_path())}
        else:
            tasks, source = found
    else:
        tasks, source = load_task_file(config.tasks), {"source": "tasks", "path": config.tasks}
    if config.mode == "teacher":
        tasks = [t for t in tasks if t.reference]
        if not tasks:
            raise InputFileError(source.get("path") or source.get("data"), "holds no reference answers, so "
                                 "--against teacher has nothing to compare with")
    tasks = choose(tasks, config.limit, config.seed)
    return tasks, {**source, "count": len(tasks), "with_reference": sum(bool(t.reference) for t in tasks)}


def _held_out(config: EvalConfig, say: Callable[[str], None]) -> tuple[list[EvalTask], dict[str, Any]] | None:
    first = Path(config.students[0])
    found = held_out_split(first)
    if found is None:
        return None
    if config.mode == "students":
        trained = set(read_json_object(Path(config.students[1]) / "provenance.json", required=False)
                      .get("train_ids") or [])
        if trained & {t.id for t in found[0]}:
            say(f"eval: {config.students[1]} trained on {first}'s held-out prompts; using the bundled set instead")
            return None
    if found[1]["data_changed"]:
        say(f"eval: {found[1]['data']} changed since {first} was trained; its held-out ids are read from it as it is")
    return found


def _refuse_unsafe_out(out: Path, config: EvalConfig) -> None:
    if config.tasks and config.tasks != BUNDLED:
        refuse_overlap(out, Path(config.tasks))
    for student in config.students:
        if Path(student).resolve().is_relative_to(out.resolve()):
            raise ConfigError(f"--out {out} is or holds the student {student}; pick a folder outside it, or leave "
                              "--out out for STUDENT/evals/NAME")


def _prepare(out: Path, config: EvalConfig, overwrite: bool) -> FolderSwap | None:
    """None to resume or start afresh in `out`; a FolderSwap when an earlier evaluation there is to be replaced."""
    if not out.exists() or not any(out.iterdir()):
        return None
    if not (out / CONFIG_FILE).is_file():
        raise RunFolderError(f"{out} is not empty and is not a synth eval folder; pick another --out")
    saved = EvalConfig.load(out)
    changed = sorted(k for k, v in config.to_dict().items() if k not in RESUMABLE and saved.to_dict().get(k) != v)
    if not changed and not overwrite:
        return None
    if not overwrite:
        raise RunFolderError(f"{out} holds an evaluation with other settings ({', '.join(changed)}); pass "
                             "--overwrite to replace it, or --out for a new folder")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_ENTRIES)
    if foreign:
        raise RunFolderError(f"{out} holds {', '.join(foreign[:5])}, which synth did not write; refusing to "
                             "replace it: pick another --out")
    return FolderSwap(out)


def _carry_cache(swap: FolderSwap, out: Path, config: EvalConfig) -> None:
    """The replaced evaluation's request cache comes along, so a judgment it already paid for is not paid again."""
    import shutil

    if config.cache is not None or swap.aside is None:
        return
    for suffix in ("", "-wal", "-shm"):               # SQLite's write-ahead log holds what a kill left unmerged
        old = swap.aside / f"{CACHE_FILE}{suffix}"
        if old.is_file():
            shutil.copy2(old, out / old.name)


def _answers(out: Path, tasks: list[EvalTask], contestants, config: EvalConfig, say
             ) -> tuple[list[dict[str, Any]], dict[str, float | None], dict[str, Any]]:
    """The answers saved by an earlier session of this evaluation, or new ones (saved at once)."""
    from .answers import answer_all

    path = out / ANSWERS
    meta = out / ANSWERS_META
    wanted = {(t.id, c.name) for t in tasks for c in contestants}
    if path.is_file() and meta.is_file():
        rows = list(read_complete_lines(path))
        if {(r.get("id"), r.get("model")) for r in rows} == wanted:
            saved = _read_meta(meta)
            say(f"eval: reusing the {len(rows)} answers in {path}")
            return rows, saved["reference_loss"], saved["runtime"]
    answered = answer_all(tasks, contestants, precision=config.precision, backend=config.backend,
                          max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, log=say)
    write_rows(answered.rows, path, "jsonl")
    write_json_atomic(meta, {"reference_loss": answered.reference_loss, "runtime": answered.runtime})
    return answered.rows, answered.reference_loss, answered.runtime


def _read_meta(path: Path) -> dict[str, Any]:
    from ..files import read_json_object

    meta = read_json_object(path)
    if not isinstance(meta.get("reference_loss"), dict) or not isinstance(meta.get("runtime"), dict):
        raise RunFolderError(f"{path}: not the answers' record synth wrote; delete it to answer again")
    return meta


def pairs_for(tasks: list[EvalTask], answers: list[dict[str, Any]], first: str, second: str) -> list[Pair]:
    """One pair per task; the reference is shown to the judge unless it is itself a contestant."""
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for row in answers:
        by_model.setdefault(row["model"], {})[row["id"]] = row
    shown = lambda text: text if text.strip() else "(no answer)"      # noqa: E731
    return [Pair(t.id, t.prompt if not t.system else f"(The assistants were told: {t.system})\n\n{t.prompt}",
                 first, second,
                 shown(answer_text(first, t, by_model)), shown(answer_text(second, t, by_model)),
                 None if REFERENCE in (first, second) else t.reference) for t in tasks]


def judge_session(config: EvalConfig, out: Path, api_key: str | None) -> TeacherSession:
    """The judge through the shared teacher layer; the embedded one decodes under the verdict grammar."""
    grammar = {"extra": {"extra_body": {"grammar": LOCAL_GRAMMAR}}} if config.judge == LOCAL else {}
    return TeacherSession(config.judge, config, folder=out, purpose="judge", api_key=api_key, **grammar)


def _judge(out: Path, config: EvalConfig, tasks, answers, first: str, second: str, api_key, say,
           progress: Progress | None) -> tuple[str | None, dict[str, Any]]:
    """Every pair judged in both orders through the shared teacher layer; returns why it stopped early (None when
    it did not) and the judge's usage over every session of this evaluation."""
    jobs = pair_jobs(pairs_for(tasks, answers, first, second))
    with judge_session(config, out, api_key) as judge:
        tick = (lambda r: progress("judge", r.answered + sum(r.failed.values()) + r.skipped, len(jobs))) \
            if progress else None
        result = run_with_stop_signals(lambda: run_jobs(judge, jobs, parse_verdict, out / JUDGMENTS,
                                                        progress=tick), [judge])
        usage = judge.budget.tally("judge").settled()
    failed = ", ".join(f"{n} {reason}" for reason, n in sorted(result.failed.items())) or "none"
    say(f"judge: {result.answered} verdicts, {result.skipped} from an earlier session, failed: {failed}"
        + (f"; stopped: {result.stopped}" if result.stopped else ""))
    return result.stopped, usage


def _finish(out: Path, config: EvalConfig, tasks, answers, losses, runtime, source, first: str, second: str,
            judged: tuple[str | None, dict[str, Any]]) -> EvalResult:
    from .report import write_report

    stopped, usage = judged
    judgments = latest_rows(out / JUDGMENTS)
    numbers, found = assemble(mode=config.mode, first=first, second=second, tasks=tasks, answers=answers,
                              judgments=judgments, losses=losses, seed=config.seed)
    status = stopped or ("incomplete" if numbers["unjudged_pairs"] else "completed")
    summary = {"status": status, **numbers, "judge": config.judge, "tasks": source, "generation": {
               **runtime, "max_new_tokens": config.max_new_tokens, "batch_size": config.batch_size},
               "judge_usage": usage, "settings": config.to_dict()}
    write_json_atomic(out / SUMMARY, summary)
    write_text_atomic(out / REPORT, write_report(summary, found, tasks, answers, judgments))
    r = numbers["results"]
    link_to_runs(out, config, {"status": status, "first": first, "second": second, "judge": config.judge,
                               "tasks": source.get("source"), "pairs": r["pairs"], "win_rate": r["win_rate"],
                               "win_rate_ci95": r["win_rate_ci95"]})
    return EvalResult(out, status, config.mode, first, second, r["win"]["count"], r["tie"]["count"],
                      r["loss"]["count"], r["win_rate"], r["win_rate_ci95"], summary)


def link_to_runs(out: Path, config: EvalConfig, headline: dict[str, Any]) -> None:
    """Append a pointer to this evaluation to RUN/evals.jsonl of each run a student was trained on, so `synth report`
    on that run can list it. A student whose data is no synth run folder (or is gone) is skipped."""
    from ..generation.runfolder import EVAL_LINKS, MANIFEST

    for student in config.students:
        provenance = read_json_object(Path(student) / "provenance.json", required=False)
        data = (provenance.get("data") or {}).get("path")
        run = next((p for p in (Path(data), Path(data).parent) if (p / MANIFEST).is_file()), None) if data else None
        if run is None:
            continue
        try:
            with JsonlAppender(run / EVAL_LINKS) as links:
                links.append({"eval": str(out.resolve()), "student": str(Path(student).resolve()),
                              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **headline})
        except OSError:                       # a read-only run folder: the evaluation itself is complete
            continue
