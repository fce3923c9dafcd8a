"""A run folder as the report reads it, once: config, manifest, records, standing rejections, accepted tasks and
the judge's verdicts. Every line goes through `checks` first, so a line synth did not write is a one-line error
naming its file and line. Nothing here writes into the run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import InputFileError, RunFolderError
from ..formats import read_rows
from ..generation.runfolder import CONFIG, DATA, DECONTAMINATION, EVAL_LINKS, MANIFEST, REJECTED, TASKS
from . import checks

JSON_KINDS = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "true or false", type(None): "null"}
MOVE_ASIDE = "fix it, or move it aside to report without it"
FIX_LINE = "synth report reads the run folders synth generate writes: fix or delete that line"
SCORES_SUMMARY = "scores.summary.json"
RUBRICS = ("quality", "complexity")

Verdicts = dict[str, tuple[int, str]]          # rubric -> (score, reason)


@dataclass
class RunData:
    path: Path
    config: dict[str, Any]
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    rejected: list[dict[str, Any]]                  # the rejections and failures that still stand
    accepted_tasks: list[dict[str, Any]]            # tasks.jsonl's "accepted" rows
    scores: dict[str, Verdicts]                     # record id -> verdicts, for the records kept
    scores_summary: dict[str, Any] = field(default_factory=dict)
    judged_not_kept: int = 0                        # verdicts on answers that were not kept (--min-quality)
    decontamination: dict[str, Any] = field(default_factory=dict)   # decontamination.json (generate --decontaminate)
    eval_links: list[dict[str, Any]] = field(default_factory=list)  # evals.jsonl: synth eval's pointers
    notes: list[str] = field(default_factory=list)  # what the reader of the report should know

    @cached_property
    def seeds(self) -> list[Any]:
        """The run's seed tasks (synth Task objects), or none when the seed file has moved since the run."""
        from ..generation.seeds import load_seeds

        try:
            return load_seeds(self.config.get("seeds"))
        except Exception:      # the seed file moved since the run: report without it
            return []

    @cached_property
    def personas(self) -> dict[str, str]:
        """persona id -> text, when the run's persona file can still be read."""
        from ..generation.personas import load_personas

        spec = self.config.get("personas")
        try:
            return {p.id: p.text for p in load_personas(spec)} if spec else {}
        except Exception:      # the persona file moved since the run: ids only
            return {}

    @cached_property
    def pool_texts(self) -> dict[str, str]:
        """Every pool task's text by id (the seeds and the accepted tasks): what a rejected candidate repeated."""
        texts = {seed.id: seed.instruction for seed in self.seeds}
        texts.update((row["task"]["id"], row["task"]["instruction"]) for row in self.accepted_tasks)
        return texts


def load_run(run: str | Path) -> RunData:
    run = Path(run)
    notes: list[str] = []        # a cut line, a cache not used
    if not (run / DATA).is_file() and not (run / CONFIG).is_file():
        raise RunFolderError(f"{run} is not a synth run folder (no {DATA} or {CONFIG})")
    config, manifest = json_file(run / CONFIG, check=checks.config), json_file(run / MANIFEST, check=checks.manifest)
    records = jsonl_rows(run / DATA, checks.record, notes)
    rejected = settled(jsonl_rows(run / REJECTED, checks.rejected, notes))
    accepted = [row for row in jsonl_rows(run / TASKS, checks.task, notes) if row["status"] == "accepted"]
    scores, not_kept = _verdicts(run, records)
    summary = json_file(run / SCORES_SUMMARY, check=checks.scores_summary)
    decontamination = json_file(run / DECONTAMINATION)
    links = jsonl_rows(run / EVAL_LINKS, _eval_link, notes)
    return RunData(run, config, manifest, records, rejected, accepted, scores, summary, not_kept,
                   decontamination=decontamination, eval_links=links, notes=notes)


def _eval_link(row: dict[str, Any]) -> str | None:
    return None if isinstance(row.get("eval"), str) and row["eval"] else "an evals.jsonl row needs an \"eval\" path"



def settled(rejected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rejections and failures that still stand: a failure a later session answered ("retried") is gone."""
    retried = {row["id"] for row in rejected if row["kind"] == "retried"}
    return [row for row in rejected if row["kind"] != "retried" and row["id"] not in retried]


def _verdicts(run: Path, records: list[dict[str, Any]]) -> tuple[dict[str, Verdicts], int]:
    """Each kept record's verdicts: scores.jsonl's (synth judge, or generate --judge), else the ones generate
    --judge kept in the record's provenance. Also how many judged answers were not kept."""
    from ..quality.scores import load_scores, scores_path

    sidecar = load_scores(run) if scores_path(run).is_file() else {}
    kept = {r["id"] for r in records}
    scores: dict[str, Verdicts] = {}
    for record in records:
        verdicts = dict(sidecar.get(record["id"], {}))
        judge = record["provenance"].get("judge") or {}
        for rubric in RUBRICS:
            if rubric not in verdicts and isinstance(judge.get(rubric), dict):
                verdicts[rubric] = (judge[rubric]["score"], judge[rubric]["reason"])
        if verdicts:
            scores[record["id"]] = verdicts
    return scores, sum(1 for record_id in sidecar if record_id not in kept)


def json_file(path: Path, advice: str = MOVE_ASIDE, check=None) -> dict[str, Any]:
    """A JSON object file of the run folder; {} when there is none."""
    if not path.is_file():
        return {}
    advice = f"; {advice}" if advice else ""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        why = f"{exc.msg}: line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise InputFileError(path, f"not valid JSON ({why}){advice}") from None
    if not isinstance(value, dict):
        raise InputFileError(path, f"holds {JSON_KINDS[type(value)]}, not a JSON object{advice}")
    problem = check(value) if check else None
    if problem:
        raise InputFileError(path, f"{problem}{advice}")
    return value


def jsonl_rows(path: Path, problem=None, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of a run's JSONL file, through the formats reader: a last line cut short by a crash is skipped
    with a note; any other line that is not a row synth wrote is an error naming it."""
    if not path.is_file():
        return []
    rows = []
    for row in read_rows(path, allow_empty=True, warn=notes.append if notes is not None else None):
        why = problem(row.data) if problem else None
        if why:
            raise row.error(f"{why}; {FIX_LINE}")
        rows.append(row.data)
    return rows
