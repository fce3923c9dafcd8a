"""Benchmarks to decontaminate against: a local file or folder (anything `synth.formats` reads), or a well-known
benchmark by name, loaded from the Hugging Face Hub or its local cache with `datasets.load_dataset`.

Every benchmark becomes a list of items, each with an id, its question (`prompt`) and its answers. A benchmark's
`content_hash` covers every item, so an index built from it is reused only while the benchmark is unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError
from ..formats import ShapeError, examples, iter_rows


@dataclass(frozen=True)
class BenchmarkItem:
    id: str
    prompt: str
    answers: tuple[str, ...] = ()


@dataclass
class Benchmark:
    name: str
    source: str                     # the path, or the Hugging Face id with its configs and split
    items: list[BenchmarkItem] = field(default_factory=list)

    @cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(json.dumps([item.id, item.prompt, list(item.answers)], ensure_ascii=False).encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()


@dataclass(frozen=True)
class KnownBenchmark:
    """Where a well-known benchmark lives on the Hub, and which of its fields are the question and the answers."""

    hf_id: str
    split: str
    prompt: tuple[str, ...]
    answers: tuple[str, ...] = ()
    configs: tuple[str | None, ...] = (None,)
    id_field: str | None = None
    data_files: str | None = None   # a repository read as plain JSON files rather than through its dataset card

    def describe(self) -> str:
        configs = ",".join(c for c in self.configs if c) or "default"
        return f"{self.hf_id} ({configs}, {self.split})"

    def load_call(self, config: str | None) -> str:
        """The datasets call that loads one config, as Python source (for the message that says how to save it)."""
        if self.data_files:
            return (f"datasets.load_dataset('json', data_files='hf://datasets/{self.hf_id}/{self.data_files}', "
                    f"split='{self.split}')")
        return f"datasets.load_dataset('{self.hf_id}'" + (f", '{config}'" if config else "") + f", split='{self.split}')"


_BBH = ("boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
        "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
        "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
        "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
        "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
        "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
        "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
        "word_sorting")
_MATH = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory", "prealgebra",
         "precalculus")

KNOWN: dict[str, KnownBenchmark] = {
    "gsm8k": KnownBenchmark("openai/gsm8k", "test", ("question",), ("answer",), ("main",)),
    "mmlu": KnownBenchmark("cais/mmlu", "test", ("question",), ("choices",), ("all",)),
    "humaneval": KnownBenchmark("openai/openai_humaneval", "test", ("prompt",), ("canonical_solution",),
                                id_field="task_id"),
    "mbpp": KnownBenchmark("google-research-datasets/mbpp", "test", ("text",), ("code",), ("full",),
                           id_field="task_id"),
    "arc": KnownBenchmark("allenai/ai2_arc", "test", ("question",), ("choices",), ("ARC-Challenge", "ARC-Easy"),
                          id_field="id"),
    "hellaswag": KnownBenchmark("Rowan/hellaswag", "validation", ("ctx",), ("endings",), id_field="ind"),
    "truthfulqa": KnownBenchmark("truthfulqa/truthful_qa", "validation", ("question",),
                                 ("best_answer", "correct_answers", "incorrect_answers"), ("generation",)),
    "ifeval": KnownBenchmark("google/IFEval", "train", ("prompt",), id_field="key"),
    "alpaca_eval": KnownBenchmark("tatsu-lab/alpaca_eval", "train", ("instruction",), ("output",),
                                  data_files="alpaca_eval.json"),
    "mt_bench": KnownBenchmark("HuggingFaceH4/mt_bench_prompts", "train", ("prompt",), ("reference",),
                               id_field="prompt_id"),
    "bbh": KnownBenchmark("lukaemon/bbh", "test", ("input",), ("target",), _BBH),
    "math": KnownBenchmark("EleutherAI/hendrycks_math", "test", ("problem",), ("solution",), _MATH),
}


# ---- naming the benchmarks ---------------------------------------------------------------------------------

def load_benchmarks(specs: list[str], fields: list[str] | None = None) -> list[Benchmark]:
    """One Benchmark per spec: an existing path is read as a local file or folder, anything else must be a name from
    KNOWN. Two benchmarks never share a name (a repeated stem gets a -2, -3 ... suffix)."""
    if not specs:
        raise ConfigError("name at least one benchmark with --against (a file, a folder, or one of "
                          f"{', '.join(KNOWN)})")
    loaded, names = [], set()
    for spec in specs:
        benchmark = load_benchmark(spec, fields)
        base, number = benchmark.name, 1
        while benchmark.name in names:
            number += 1
            benchmark.name = f"{base}-{number}"
        names.add(benchmark.name)
        loaded.append(benchmark)
    return loaded


def load_benchmark(spec: str, fields: list[str] | None = None) -> Benchmark:
    path = Path(spec).expanduser()
    if path.exists():
        return load_local(path, fields)
    known = KNOWN.get(spec.lower())
    if known is None:
        raise ConfigError(f"benchmark {spec!r} is neither a file or folder nor a known name; give a local copy, or "
                          f"one of {', '.join(KNOWN)}")
    return load_known(spec.lower(), known)


def benchmark_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".parquet", ".txt"):
        name = name.removesuffix(suffix)
    return name or "benchmark"


# ---- local files ----------------------------------------------------------------------------------------

def load_local(path: Path, fields: list[str] | None = None) -> Benchmark:
    """Every row of a local dataset as items: the named fields (the first the question, the rest answers); for a
    saved copy of a known benchmark (a file or folder named after it, as the offline message says to save it), the
    table's fields; otherwise the prompt and answer of each example the row's shape holds."""
    name = benchmark_name(path)
    known = KNOWN.get(name.lower())
    items, seen = [], set()
    for row in iter_rows(path):
        number = row.line if row.line is not None else row.index
        row_fields, id_field = fields, "id"
        if not fields and known is not None and known.prompt[0] in row.data:
            row_fields, id_field = [known.prompt[0], *known.answers], known.id_field or "id"
        for position, (prompt, answers, row_id) in enumerate(_row_items(row, row_fields, id_field)):
            item_id = row_id if row_id is not None else f"{name}:{number}"
            if position:
                item_id = f"{item_id}#{position + 1}"
            if item_id in seen:
                item_id = f"{item_id}@{number}"
            seen.add(item_id)
            items.append(BenchmarkItem(item_id, prompt, answers))
    if not items:
        raise ConfigError(f"{path}: holds no benchmark items; give a dataset with at least one row")
    return Benchmark(name, str(path), items)


def _row_items(row, fields: list[str] | None, id_field: str = "id"
               ) -> Iterator[tuple[str, tuple[str, ...], str | None]]:
    data = row.data
    row_id = _item_id(data.get(id_field))
    if fields:
        if fields[0] not in data:
            raise row.error(f"no field {fields[0]!r} (this row has {', '.join(sorted(map(str, data)))}); name the "
                            "question's field with --field")
        prompt = "\n".join(flatten(data[fields[0]]))
        yield prompt, tuple(text for name in fields[1:] for text in flatten(data.get(name))), row_id
        return
    try:
        found = examples(data)
    except ShapeError as exc:
        raise row.error(f"not a benchmark item synth can read ({exc}); name the question's field with --field") from None
    for example in found:
        yield example.prompt, tuple(a for a in (example.output,) if a and a.strip()), example.id or row_id


def _item_id(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def flatten(value: Any) -> list[str]:
    """The non-empty strings in a field: a string, or the strings inside lists and objects (MMLU's choices, ARC's
    {text, label} choices, MT-Bench's turns)."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, dict):
        return [text for inner in value.values() for text in flatten(inner)]
    if isinstance(value, (list, tuple)):
        return [text for inner in value for text in flatten(inner)]
    return []


# ---- well-known benchmarks -------------------------------------------------------------------------------

def load_known(name: str, known: KnownBenchmark) -> Benchmark:
    items: list[BenchmarkItem] = []
    for config in known.configs:
        rows = _hub_rows(name, known, config)
        for index, row in enumerate(rows):
            raw_id = _item_id(row.get(known.id_field)) if known.id_field else None
            local_id = raw_id if raw_id is not None else str(index)
            item_id = f"{config}/{local_id}" if len(known.configs) > 1 else local_id
            prompt = "\n\n".join(text for name_ in known.prompt for text in flatten(row.get(name_)))
            answers = tuple(text for name_ in known.answers for text in flatten(row.get(name_)))
            items.append(BenchmarkItem(item_id, prompt, answers))
    return Benchmark(name, known.describe(), items)


def _hub_rows(name: str, known: KnownBenchmark, config: str | None):
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import datasets

    offline = not hub_reachable()
    try:
        with _offline_mode(offline):
            if known.data_files:
                files = f"hf://datasets/{known.hf_id}/{known.data_files}"
                return datasets.load_dataset("json", data_files=files, split=known.split)
            return datasets.load_dataset(known.hf_id, config, split=known.split)
    except Exception as exc:  # datasets raises many kinds (connection, missing cache, gated repo): one line for all
        where = ("is not in the local Hugging Face cache and the Hub cannot be reached" if offline
                 else f"could not be loaded ({type(exc).__name__})")
        if len(known.configs) > 1:
            copy = (f"each of its {len(known.configs)} configs into one folder, e.g. "
                    f"{known.load_call(config)}.to_json('{name}/{config}.jsonl'), and pass that folder")
        else:
            copy = f"{known.load_call(config)}.to_json('{name}.jsonl'), and pass that file"
        raise ConfigError(f"benchmark {name!r} ({known.hf_id}) {where}; load it once where the Hub is reachable, or "
                          f"save a local copy ({copy} to --against)") from None


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub can be asked at all. Offline, datasets would spend about half a minute on retries before
    failing; asking once here lets it go straight to the local cache."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True                 # a proxy decides; a direct probe would say nothing
    try:
        socket.create_connection((constants.ENDPOINT.split("://")[-1].split("/")[0], 443), timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _offline_mode(offline: bool):
    """Run datasets in offline mode (the local cache only) without touching the environment for good."""
    if not offline:
        yield
        return
    import datasets.config
    from huggingface_hub import constants

    saved = (datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved
