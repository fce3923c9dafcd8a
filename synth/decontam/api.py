"""`decontaminate()`: stream a dataset through the Decontaminator; clean rows to one file, flagged rows to another.

    result = decontaminate("runs/general", "clean.jsonl", DecontamConfig(against=["gsm8k", "my_eval.jsonl"]))

Clean rows are written unchanged, every field kept. Flagged rows go to OUT.contaminated.jsonl with the benchmark,
the item id, the stage, the score, the matched span and the row itself; OUT.decontamination.json holds the summary
per benchmark. The dataset is read one batch at a time and flagged rows wait in a temporary file, so a dataset of
millions of rows is never held in memory. No output may be, hold or sit inside the dataset or a local benchmark.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..errors import ConfigError
from ..files import refuse_overlap, to_json, write_json_atomic
from ..formats import Row, ShapeError, dataset_files, examples, iter_rows, write_rows
from .config import DecontamConfig
from .decontaminator import Decontaminator, Flag


@dataclass
class DecontamResult:
    total: int
    clean: int
    contaminated: Counter = field(default_factory=Counter)     # rows per benchmark
    by_stage: Counter = field(default_factory=Counter)         # rows per deciding stage
    out: str = ""
    contaminated_path: str = ""
    summary_path: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


def output_paths(out: Path, contaminated: str | Path | None = None, summary: str | Path | None = None
                 ) -> tuple[Path, Path]:
    """OUT.contaminated.jsonl and OUT.decontamination.json beside `out`, unless given."""
    return (Path(contaminated) if contaminated else _beside(out, "contaminated.jsonl"),
            Path(summary) if summary else _beside(out, "decontamination.json"))


def _beside(out: Path, ending: str) -> Path:
    """OUT.ending, with OUT's own dataset suffix left out (clean.jsonl -> clean.contaminated.jsonl)."""
    base = out.name
    for suffix in (".gz", ".jsonl", ".json", ".parquet"):
        base = base.removesuffix(suffix)
    return out.with_name(f"{base}.{ending}")


def decontaminate(dataset: str | Path, out: str | Path, config: DecontamConfig | dict | None = None, *,
                  contaminated_path: str | Path | None = None, summary_path: str | Path | None = None,
                  embedder=None, verifier=None, progress: Callable[[int], None] | None = None,
                  log: Callable[[str], None] | None = None) -> DecontamResult:
    """Check every row of `dataset` against `config.against`; see the module docstring."""
    config = DecontamConfig.coerce(config if config is not None else {}).validate()
    dataset, out = Path(dataset), Path(out)
    flagged_path, summary_file = output_paths(out, contaminated_path, summary_path)
    _refuse_clashes(dataset, out, flagged_path, summary_file, config.against)
    dataset_files(dataset)              # a missing dataset is one line before any index is built
    with contextlib.ExitStack() as stack:
        if verifier is None and config.verifier_model:
            from .verifier import open_verifier

            verifier = open_verifier(config.verifier_model, config, _beside(out, "verifier"), stack)
        checker = stack.enter_context(Decontaminator.open(config=config, embedder=embedder, verifier=verifier,
                                                          log=log))
        spool = stack.enter_context(tempfile.TemporaryFile(dir=out.parent if out.parent.is_dir() else None))
        tally = _Tally()
        clean = write_rows(_clean_rows(dataset, checker, config, spool, tally, progress), out)
        spool.seek(0)
        write_rows((json.loads(line) for line in spool), flagged_path, "jsonl")
        summary = {"dataset": str(dataset), "rows": tally.total, "clean": clean, "contaminated": tally.total - clean,
                   "out": str(out), "contaminated_path": str(flagged_path), **checker.summary()}
        write_json_atomic(summary_file, summary)
    return DecontamResult(tally.total, clean, tally.benchmarks, tally.stages, str(out), str(flagged_path),
                          str(summary_file), summary)


@dataclass
class _Tally:
    total: int = 0
    benchmarks: Counter = field(default_factory=Counter)
    stages: Counter = field(default_factory=Counter)


def _clean_rows(dataset: Path, checker: Decontaminator, config: DecontamConfig, spool: IO[bytes], tally: _Tally,
                progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    rows = iter_rows(dataset)
    while batch := list(itertools.islice(rows, config.batch_size)):
        texts = [row_texts(row, config.dataset_field) for row in batch]
        flags = checker.check([prompt for prompt, _ in texts], [extra for _, extra in texts])
        for row, flag in zip(batch, flags):
            if flag is None:
                yield row.data
            else:
                spool.write(to_json(_flagged_row(row, flag)) + b"\n")
                tally.benchmarks[flag.benchmark] += 1
                tally.stages[flag.stage] += 1
        tally.total += len(batch)
        if progress:
            progress(tally.total)
    if not tally.total:
        raise ConfigError(f"{dataset}: holds no rows; give a dataset with at least one row")


def row_texts(row: Row, field_name: str | None = None) -> tuple[str, list[tuple[str, str]]]:
    """A row's prompt (instruction and input), and its other texts by name: its response, the other turns of a
    conversation, the other instances of a seed task."""
    try:
        found = examples(row.data, field_name)
    except ShapeError as exc:
        raise row.error(f"no text to check ({exc}); name the field to check with --dataset-field") from None
    prompt = found[0].prompt
    seen, extra = {prompt}, []

    def add(name: str, text: str | None) -> None:
        if text and text.strip() and text not in seen:
            seen.add(text)
            extra.append((name, text))

    for example in found:
        if example.messages:
            for message in example.messages:
                if message["role"] != "system":
                    add("response" if message["role"] == "assistant" else "prompt", message["content"])
        else:
            add("prompt", example.prompt)
            add("response", example.output)
    return prompt, extra


def _flagged_row(row: Row, flag: Flag) -> dict[str, Any]:
    where = {"line": row.line} if row.line is not None else {"index": row.index}
    return {**where, **flag.as_dict(), "row": row.data}


def _refuse_clashes(dataset: Path, out: Path, flagged: Path, summary: Path, against: list[str]) -> None:
    """No output may be, hold or sit inside the dataset or a local benchmark, nor share a path with another output."""
    outputs = {"--out": out, "--contaminated": flagged, "--summary": summary}
    sources = [dataset, *(Path(spec) for spec in against if Path(spec).exists())]
    for flag, path in outputs.items():
        for source in sources:
            refuse_overlap(path, source, flag)
    if len({p.resolve() for p in outputs.values()}) < len(outputs):
        raise ConfigError("--out, --contaminated and --summary must name three different files")
