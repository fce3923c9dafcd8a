"""The judge's scores sidecar: reading it (`load_scores`, what `synth select` and `synth report` use) and summing it
up (`summarize`: counts, histograms, failures, cost, and how the quality score follows response length).

A scores file is written by the jobs engine, one outcome a line:
    {"id": "REC#quality", "record_id": "REC", "rubric": "quality", "template_hash": "...", "model": "...",
     "status": "ok", "result": {"score": 4, "reason": "..."}, "raw": "...", "usage": {...}, "cost_usd": 0.0,
     "cached": false, "created_at": "..."}
Failures carry status "failed", a "reason" and a "detail" instead of a result. The latest line of an id wins.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InputFileError
from ..files import refuse_overlap
from ..teacher.jobs import latest_rows

if TYPE_CHECKING:
    from ..teacher.budget import Usage
    from .judge import Item, JudgeConfig

SCORES_FILE = "scores.jsonl"


def scores_path(path: str | Path) -> Path:
    """A run folder's scores file, or the scores file given."""
    path = Path(path)
    return path / SCORES_FILE if path.is_dir() else path


def load_scores(path: str | Path) -> dict[str, dict[str, tuple[int, str]]]:
    """record id -> {rubric: (score, reason)} from a run folder's scores.jsonl or a scores file: the latest answered
    verdict of each record and rubric. Unanswered ones are left out. A line synth did not write is an error."""
    file = scores_path(path)
    if not file.is_file():
        raise InputFileError(file, "no scores file here; score the records first with synth judge")
    scores: dict[str, dict[str, tuple[int, str]]] = {}
    for row in latest_rows(file).values():
        if row.get("status") != "ok":
            continue
        result, record, rubric = row.get("result"), row.get("record_id"), row.get("rubric")
        if not (isinstance(record, str) and isinstance(rubric, str) and isinstance(result, dict)
                and type(result.get("score")) is int and isinstance(result.get("reason"), str)):
            raise InputFileError(file, f"verdict {str(row.get('id'))[:60]!r} has no record_id, rubric, integer "
                                       "score and reason, so synth judge did not write it")
        scores.setdefault(record, {})[rubric] = (result["score"], result["reason"])
    return scores


# ---- where a judge writes -----------------------------------------------------------------------

@dataclass
class Plan:
    """The files of one judge run: the scores, their summary, the spend ledger, the request cache, and the run
    folder to lock when they are inside one."""

    data: Path
    out: Path
    summary: Path
    ledger: Path
    cache: Path
    run: Path | None


def plan_paths(data: str | Path, config: JudgeConfig) -> Plan:
    """Where `judge` writes, checked before anything is written. Inside a run folder the judge books its spend in
    the run's own ledger (purpose "judge") and shares its cache; beside a dataset it keeps its own."""
    from ..formats.export import RUN_FILES
    from ..formats.reader import DATA_SUFFIXES, RUN_DATA
    from ..teacher.session import CACHE_FILE, SPEND_FILE

    data = Path(data)
    if not data.exists():
        raise InputFileError(data, "no such file or folder; give a synth run folder or a dataset file")
    is_run = data.is_dir() and (data / RUN_DATA).is_file()
    if config.out:
        out = Path(config.out)
    elif is_run:
        out = data / SCORES_FILE
    else:
        stem = next((data.name[:-len(end)] for end in DATA_SUFFIXES if data.name.lower().endswith(end)), data.name)
        out = data.with_name(stem + ".scores.jsonl")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give the scores file to write")
    refuse_overlap(out, data / RUN_DATA if is_run else data)
    folder = out.parent.resolve()
    base = out.name.removesuffix(".jsonl")
    in_run = folder == data.resolve() if is_run else (folder / RUN_DATA).is_file()
    if in_run and out.name != SCORES_FILE and out.name.startswith(RUN_FILES):
        raise ConfigError(f"--out {out} is one of the run folder's own files; write the scores elsewhere")
    if in_run:
        return Plan(data, out, out.with_name(base + ".summary.json"), folder / SPEND_FILE, folder / CACHE_FILE,
                    folder)
    return Plan(data, out, out.with_name(base + ".summary.json"), out.with_name(base + ".spend.jsonl"),
                out.with_name(base + ".cache.sqlite"), None)


def expected_model(judge: str) -> str:
    """The model name a judge's verdicts carry (the embedded one answers as openai/NAME)."""
    from ..teacher.local import LOCAL_MODEL_NAME
    from ..teacher.session import LOCAL

    return f"openai/{LOCAL_MODEL_NAME}" if judge == LOCAL else judge


def check_earlier_scores(out: Path, model: str, hashes: dict[str, str]) -> None:
    """A scores file holds one judge's verdicts under one version of the rubrics, or resuming it would mix two."""
    for row in latest_rows(out).values():
        rubric = row.get("rubric")
        if row.get("model") != model or (rubric in hashes and row.get("template_hash") != hashes[rubric]):
            raise ConfigError(f"{out} holds verdicts of judge {row.get('model')!r} under rubric version "
                              f"{row.get('template_hash')}; to judge with {model!r} (rubrics "
                              f"{', '.join(f'{r} {h}' for r, h in hashes.items())}) give another --out")


# ---- summing up ----------------------------------------------------------------------------------

def summarize(out: Path, items: list[Item], config: JudgeConfig, usage: Usage, status: str) -> dict[str, Any]:
    """What a judge run holds, for scores.summary.json and the command's last line."""
    from .judge import SCALES

    rows = latest_rows(out)
    lengths = {item.id: len(item.example.output or "") for item in items}
    summary: dict[str, Any] = {"status": status, "judge": expected_model(config.judge), "records": len(items),
                               "rubrics": {}, "usage": usage.settled()}
    for rubric in config.rubrics:
        low, high = SCALES[rubric]
        mine = [rows.get(f"{item.id}#{rubric}") for item in items]
        ok = [r for r in mine if r and r.get("status") == "ok"]
        failed = Counter(r.get("reason", "unknown") for r in mine if r and r.get("status") == "failed")
        scores = [r["result"]["score"] for r in ok]
        histogram = Counter(scores)
        part: dict[str, Any] = {
            "scale": [low, high], "answered": len(ok), "failed": sum(failed.values()),
            "pending": sum(r is None for r in mine), "failures": dict(sorted(failed.items())),
            "histogram": {str(s): histogram.get(s, 0) for s in range(low, high + 1)},
            "mean": round(sum(scores) / len(scores), 4) if scores else None,
            "cached": sum(bool(r.get("cached")) for r in ok),
        }
        if rubric == "quality":
            pairs = [(lengths[r["record_id"]], r["result"]["score"]) for r in ok if r.get("record_id") in lengths]
            part["length_bias"] = length_bias(pairs)
        summary["rubrics"][rubric] = part
    return summary


def length_bias(pairs: list[tuple[int, int]]) -> dict[str, Any]:
    """How the quality score follows the response's length in characters: Pearson's r, and Spearman's rho (Pearson
    on ranks, ties sharing their mean rank). None where it is undefined (fewer than 3 pairs, or no spread)."""
    lengths = [float(a) for a, _ in pairs]
    scores = [float(b) for _, b in pairs]
    return {"n": len(pairs), "length": "characters of the response",
            "pearson": _pearson(lengths, scores), "spearman": _pearson(_ranks(lengths), _ranks(scores))}


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    import numpy as np

    if len(xs) < 3:
        return None
    x, y = np.asarray(xs) - np.mean(xs), np.asarray(ys) - np.mean(ys)
    spread = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return round(float((x * y).sum()) / spread, 4) if spread > 0 else None


def _ranks(values: list[float]) -> list[float]:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks
