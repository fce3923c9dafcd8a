"""The one reader and writer of datasets: every file and folder users bring, every row shape, every export format.

    read_rows(path) / iter_rows(path)     JSON, JSONL, .gz, Parquet, .txt, folders, HF save_to_disk, run folders
    detect(row) / examples(row)           the row's shape, and its prompts and answers as `Example`s
    to_task(row)                          a row as a Task (seeds, queries)
    write_rows(rows, path, fmt)           JSONL, JSON, Parquet or an HF folder, written atomically
    format_row(fmt, row)                  a row in an export format (openai-chat, alpaca, sharegpt, hf, parquet)
"""

from .reader import DATA_SUFFIXES, Row, Warn, dataset_files, iter_rows, read_rows, repair
from .shapes import SHAPES, Example, ShapeError, detect, example, examples, record_problem, to_task
from .writer import FORMATS, check_format, finite, format_row, write_rows

__all__ = ["DATA_SUFFIXES", "Row", "Warn", "dataset_files", "iter_rows", "read_rows", "repair", "SHAPES", "Example", "ShapeError", "detect", "example",
           "examples", "record_problem", "to_task", "FORMATS", "check_format", "finite", "format_row", "write_rows"]
