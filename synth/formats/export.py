"""`synth export`: a run's records (or any dataset synth reads) in the formats trainers read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError
from ..settings import Settings, setting
from .reader import RUN_DATA, Warn, read_rows
from .shapes import ShapeError, record_problem
from .writer import FORMATS, check_format, format_row, write_rows

# What a run folder owns: export may add a file beside them (make demo does), never write over one.
RUN_FILES = ("config.json", "manifest.json", "tasks.jsonl", RUN_DATA, "rejected.jsonl", "cache.sqlite", "spend.jsonl",
             "gate", "report", "scores.jsonl", "scores.summary.json", "batches.jsonl", "run.lock", "evals",
             "decontam")
WHAT_EXPORT_READS = "export reads a synth run folder or any dataset synth reads"


@dataclass
class ExportConfig(Settings):
    command: ClassVar[str] = "export"

    format: str = setting("openai-chat", "Output format.", choices=FORMATS)
    out: str = setting("", "File to write (a folder for hf).")

    def checks(self) -> list[str]:
        return [] if self.out else ["--out is needed: the file (or, for hf, the folder) to write"]


def load_records(run: str | Path, *, warn: Warn | None = None) -> list[dict[str, Any]]:
    """The records of a run folder (or of a records file). A line that is not a synth record is an InputFileError
    naming it; a last line cut short by a crash is skipped and reported through `warn` (default: a Python warning)."""
    records = []
    for row in read_rows(run, warn=warn):
        problem = record_problem(row.data)
        if problem:
            raise row.error(f"not a synth record ({problem}); load_records reads synth run folders")
        records.append(row.data)
    return records


def export(source: str | Path, fmt: str, out: str | Path, *, warn: Warn | None = None) -> int:
    """Write the rows of `source` (a run folder or any dataset) to `out` in format `fmt`; returns how many."""
    check_format(fmt)
    out = Path(out)
    _refuse_out_in_input(Path(source), out)
    rows = []
    for row in read_rows(source, warn=warn):
        try:
            rows.append(format_row(fmt, row.data))
        except ShapeError as exc:
            raise row.error(f"{exc}; {WHAT_EXPORT_READS}") from None
    return write_rows(rows, out, fmt)


def _refuse_out_in_input(source: Path, out: Path) -> None:
    """--out must not be the input, one of a run folder's own files, nor (a folder, for hf) hold the input.
    A new file in the run folder is fine: `make demo` and the library example export there."""
    source, target = source.resolve(), out.resolve()
    folder = source if source.is_dir() else (source.parent if source.name == RUN_DATA else source)
    inside = target.relative_to(folder).parts if target.is_relative_to(folder) else None
    if inside == () or (inside and inside[0].startswith(RUN_FILES)) or source.is_relative_to(target):
        raise ConfigError(f"--out {out} would write over the input {source}, which export must not change; "
                          "write it elsewhere")
