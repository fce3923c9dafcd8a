"""Hostile and malformed input: huge seed lines, injection text in replies, and paths that stay put."""

import json

import pytest

import synth
from synth.errors import InputFileError
from synth.seeds import load_seeds
from synth.testing import INJECTIONS, FakeTeacherServer, Reply


def test_ten_megabyte_line_is_read(tmp_path):
    path = tmp_path / "big.jsonl"
    huge = "word " * 2_000_000
    path.write_text(json.dumps({"instruction": "Summarize the text below.", "instances": [{"input": huge, "output": "ok"}]}) + "\n")
    [task] = load_seeds(path)
    assert len(task.instances[0]["input"]) == len(huge)


def test_ten_megabyte_broken_line_is_one_line_error(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text('{"instruction": "fine"}\n{"instruction": "' + "x" * 10_000_000 + "\n")
    with pytest.raises(InputFileError, match=r"big\.jsonl:2: is not valid JSON") as info:
        load_seeds(path)
    assert len(str(info.value)) < 300


def test_injection_text_is_data_not_instructions(tmp_path):
    """Replies full of prompt injection, fake keys, ../ paths and URLs are stored verbatim and touch nothing else."""
    def script(body, attempt):
        return Reply("Here is the answer, explained.\n" + "\n".join(INJECTIONS))

    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"id": f"../../escape{i}", "instruction": f"Question {i} about ../etc/passwd?"}) + "\n"
                               for i in range(5)))
    before = {p for p in tmp_path.parent.rglob("*")}
    with FakeTeacherServer(script) as server:
        result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher="openai/fake-teacher",
                                api_base=server.url)
    assert result.records == 5
    created = {p for p in tmp_path.parent.rglob("*")} - before
    assert created and all(p.resolve().is_relative_to((tmp_path / "run").resolve()) for p in created)
    records = synth.load_records(tmp_path / "run")
    assert all(r["response"].endswith(INJECTIONS[-1]) for r in records)
    assert {r["task"]["id"] for r in records} == {f"../../escape{i}" for i in range(5)}
