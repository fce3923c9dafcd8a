"""One reader for every command: each container × each row shape gives the same rows to seeds, dedup, train and
export, and each kind of damage gives the same warning or one-line error (file and line) to all of them."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest

from synth.errors import InputFileError
from synth.formats import SHAPES, ShapeError, detect, examples, format_row, iter_rows, read_rows, to_task, write_rows
from synth.formats.export import export
from synth.gate.dedup import read_dataset
from synth.generation.seeds import load_seeds
from synth.training.data import load_conversations

SYSTEM = {"id": "step_by_step", "text": "Think it through."}
# Two rows of each shape, each with an answer, so every command can read every shape.
ROWS = {
    "synth": [{"id": f"rec-{i}", "task": {"id": f"t{i}", "instruction": f"Add {i} and 2.", "kind": "math",
                                          "is_classification": False, "origin": "machine"},
               "instance": {"index": 0, "input": "", "reference_output": ""}, "system_message": SYSTEM,
               "response": f"{i} + 2 = {i + 2}", "provenance": {"teacher": "t"}} for i in (1, 2)],
    "chat": [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Add {i} and 2."},
                           {"role": "assistant", "content": f"{i + 2}"}]} for i in (1, 2)],
    "sharegpt": [{"conversations": [{"from": "human", "value": f"Add {i} and 2."}, {"from": "gpt", "value": f"{i + 2}"}]}
                 for i in (1, 2)],
    "seed": [{"id": f"s{i}", "instruction": f"Add {i} and 2.", "instances": [{"input": "", "output": f"{i + 2}"}],
              "is_classification": False} for i in (1, 2)],
    "alpaca": [{"instruction": f"Add {i} and a number.", "input": "2", "output": f"{i + 2}"} for i in (1, 2)],
    "dolly": [{"instruction": f"Add {i} and a number.", "context": "2", "response": f"{i + 2}", "category": "math"}
              for i in (1, 2)],
    "instruction_response": [{"instruction": f"Add {i} and 2.", "response": f"{i + 2}"} for i in (1, 2)],
    "prompt_completion": [{"template": "t", "prompt": f"Add {i} and 2.", "completion": f"{i + 2}"} for i in (1, 2)],
    "prompt_response": [{"prompt": f"Add {i} and 2.", "response": f"{i + 2}"} for i in (1, 2)],
    "text": [{"text": f"Add {i} and 2.", "answer": f"{i + 2}"} for i in (1, 2)],
}
PROMPTS = {"alpaca": ["Add 1 and a number.\n\n2", "Add 2 and a number.\n\n2"],
           "dolly": ["Add 1 and a number.\n\n2", "Add 2 and a number.\n\n2"]}


def jsonl_bytes(rows, newline=b"\n") -> bytes:
    return b"".join(json.dumps(r).encode() + newline for r in rows)


CONTAINERS = {
    "jsonl": lambda rows, path: path.with_suffix(".jsonl").write_bytes(jsonl_bytes(rows)),
    "json": lambda rows, path: path.with_suffix(".json").write_text(json.dumps(rows, indent=1)),
    "jsonl.gz": lambda rows, path: path.with_suffix(".jsonl.gz").write_bytes(gzip.compress(jsonl_bytes(rows))),
    "parquet": lambda rows, path: write_rows(rows, path.with_suffix(".parquet")),
    "bom": lambda rows, path: path.with_suffix(".jsonl").write_bytes(b"\xef\xbb\xbf" + jsonl_bytes(rows)),
    "crlf": lambda rows, path: path.with_suffix(".jsonl").write_bytes(jsonl_bytes(rows, b"\r\n")),
    "no final newline": lambda rows, path: path.with_suffix(".jsonl").write_bytes(jsonl_bytes(rows).rstrip(b"\n")),
    "json with a misleading name": lambda rows, path: path.with_suffix(".jsonl").write_text(json.dumps(rows)),
    "folder of files": lambda rows, path: _folder(rows, path),
}


def _folder(rows, path: Path) -> None:
    path.mkdir()
    for i, row in enumerate(rows):
        (path / f"part-{i}.jsonl").write_bytes(jsonl_bytes([row]))


def written(tmp_path: Path, container: str, rows) -> Path:
    base = tmp_path / "data"
    CONTAINERS[container](rows, base)
    return next(p for p in tmp_path.iterdir() if p.name.startswith("data"))


def every_reader(path: Path) -> dict[str, object]:
    """What each command takes from the file: its prompts (or its error message)."""
    readers = {
        "formats": lambda: [_prompt(r) for r in read_rows(path)],
        "seeds": lambda: [t.instruction if not t.instances or not t.instances[0]["input"] else
                          f"{t.instruction}\n\n{t.instances[0]['input']}" for t in load_seeds(path)],
        "dedup": lambda: [item.text for item in read_dataset(path)],
        "train": lambda: [c.messages[-2]["content"] for c in load_conversations(path)],
        "export": lambda: [json.loads(l)["messages"][-2]["content"]
                           for l in _export(path).read_text().splitlines()],
    }
    seen = {}
    for name, read in readers.items():
        try:
            seen[name] = read()
        except InputFileError as exc:
            seen[name] = f"error: {exc}"
    return seen


def _prompt(row) -> str:
    try:
        return examples(row.data)[0].prompt
    except ShapeError as exc:
        raise row.error(str(exc)) from None


def _export(path: Path) -> Path:
    out = path.parent / "exported.jsonl"
    export(path, "openai-chat", out)
    return out


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("shape", ROWS)
def test_every_shape_in_every_container_reads_the_same_everywhere(tmp_path, shape, container):
    path = written(tmp_path, container, ROWS[shape])
    assert [detect(r.data) for r in read_rows(path)] == [shape, shape]
    expected = PROMPTS.get(shape, ["Add 1 and 2.", "Add 2 and 2."])
    assert every_reader(path) == {name: expected for name in ("formats", "seeds", "dedup", "train", "export")}


DAMAGE = {
    "cut last line": (b'{"instruction": "One.", "output": "1"}\n{"instruction": "Tw', None),
    "damaged middle line": (b'{"instruction": "One.", "output": "1"}\n{"instruction": \n{"instruction": "Two.", "output": "2"}\n',
                            r"d\.jsonl:2: is not valid JSON"),
    "not utf-8": (b'{"instruction": "One.", "output": "1"}\n{"instruction": "\xff\xfe", "output": "2"}\n',
                  r"d\.jsonl:2: is not UTF-8 text"),
    "empty file": (b"", r"d\.jsonl: holds no"),
    "blank lines only": (b"\n\n  \n", r"d\.jsonl: holds no"),
    "not an object": (b'{"instruction": "One.", "output": "1"}\n[1, 2]\n', r"d\.jsonl:2: expected a JSON object"),
    "unknown shape": (b'{"instruction": "One.", "output": "1"}\n{"colour": "red"}\n', r"d\.jsonl:2: "),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damage_is_handled_one_way_by_every_command(tmp_path, damage):
    content, message = DAMAGE[damage]
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = every_reader(path)
    if message is None:          # a cut last line: skipped with a warning naming file and line, everywhere
        assert all(value == ["One."] for value in seen.values()), seen
        assert all("d.jsonl:2: skipped a last line cut short" in str(w.message) for w in caught) and caught
    else:
        for name, value in seen.items():
            assert isinstance(value, str) and value.startswith("error: "), (name, value)
            assert __import__("re").search(message, value), (name, value)
            assert "\n" not in value


def test_a_lone_surrogate_is_repaired_not_a_crash(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"instruction": "Smile \\ud83d please.", "output": "ok \\ud83d\\ude00"}\n')
    [row] = read_rows(path)
    assert row.data["instruction"] == "Smile \ufffd please." and row.data["output"] == "ok \U0001F600"
    out = tmp_path / "out.jsonl"
    write_rows([row.data], out)
    assert json.loads(out.read_text(encoding="utf-8"))["instruction"] == "Smile \ufffd please."


def test_non_finite_numbers_are_never_written(tmp_path):
    out = tmp_path / "o.jsonl"
    write_rows([{"score": float("nan"), "cost": float("inf"), "ok": 1.5}], out)
    assert json.loads(out.read_text()) == {"score": None, "cost": None, "ok": 1.5}


def test_a_seed_row_with_several_instances_keeps_them_all():
    row = {"instruction": "Sort the list.", "instances": [{"input": "3 1 2", "output": "1 2 3"},
                                                          {"input": "b a", "output": "a b"},
                                                          {"input": "9 8", "output": "8 9"}]}
    assert [e.input for e in examples(row)] == ["3 1 2", "b a", "9 8"]
    assert len(to_task(row).instances) == 3


def test_a_query_with_an_input_and_no_output_keeps_its_input():
    task = to_task({"instruction": "Summarize the article.", "input": "The council met on Monday."}, "query")
    assert task.instances == [{"input": "The council met on Monday.", "output": ""}]


def test_a_named_field_reads_any_row():
    [ex] = examples({"question_text": "Why is the sky blue?", "id": 3}, "question_text")
    assert ex.prompt == "Why is the sky blue?" and ex.id == "3"


def test_hf_folder_and_parquet_round_trip(tmp_path):
    rows = ROWS["alpaca"]
    write_rows([format_row("hf", r) for r in rows], tmp_path / "hf", "hf")
    write_rows(rows, tmp_path / "rows.parquet")
    assert [r.data["instruction"] for r in iter_rows(tmp_path / "hf")] == [r["instruction"] for r in rows]
    assert [r.data for r in iter_rows(tmp_path / "rows.parquet")] == rows


def test_a_write_that_fails_leaves_the_old_file_whole(tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text('{"kept": true}\n')

    def rows():
        yield {"a": 1}
        raise RuntimeError("interrupted half-way")

    with pytest.raises(RuntimeError):
        write_rows(rows(), out)
    assert out.read_text() == '{"kept": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["o.jsonl"]


def test_the_shape_table_is_complete():
    assert set(ROWS) | {"field"} == set(SHAPES)
