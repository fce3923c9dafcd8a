import json
from collections import Counter

import pytest

from synth.errors import InputFileError
from synth.generation.kinds import KINDS
from synth.generation.seeds import load_seeds


def test_bundled_seeds_are_many_and_diverse():
    seeds = load_seeds()
    assert len(seeds) >= 100
    kinds = Counter(t.kind for t in seeds)
    assert set(kinds) == set(KINDS)
    assert min(kinds.values()) >= 6
    assert len({t.instruction for t in seeds}) == len(seeds)
    assert all(t.instances and t.instances[0]["output"] for t in seeds)


def test_self_instruct_format(tmp_path):
    path = tmp_path / "seed_tasks.jsonl"
    rows = [{"id": "seed_task_0", "name": "breakfast", "instruction": "Suggest a healthy breakfast.",
             "instances": [{"input": "", "output": "Oatmeal with fruit."}], "is_classification": False},
            {"id": "seed_task_1", "name": "sentiment", "instruction": "Is the review positive or negative?",
             "instances": [{"input": "Great film.", "output": "Positive"}], "is_classification": True}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    seeds = load_seeds(path)
    assert [t.id for t in seeds] == ["seed_task_0", "seed_task_1"]
    assert seeds[1].is_classification is True and seeds[1].instances == [{"input": "Great film.", "output": "Positive"}]


def test_alpaca_format(tmp_path):
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps([{"instruction": "Add the numbers.", "input": "2, 3", "output": "5"},
                                {"instruction": "Name a color.", "input": "", "output": "Blue"}]))
    seeds = load_seeds(path)
    assert [t.instruction for t in seeds] == ["Add the numbers.", "Name a color."]
    assert seeds[0].instances == [{"input": "2, 3", "output": "5"}]
    assert seeds[0].id != seeds[1].id


def test_bom_and_crlf_are_read(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"instruction": "Name a planet."}\r\n{"instruction": "Name a river."}\r\n')
    assert [t.instruction for t in load_seeds(path)] == ["Name a planet.", "Name a river."]


@pytest.mark.parametrize("content, message", [
    (b'{"instruction": "ok"}\n{"instruction": \n', r"s\.jsonl:2: is not valid JSON"),
    (b'{"instruction": "ok"}\n{"name": "x"}\n', r"s\.jsonl:2: not a row shape synth knows"),
    (b'{"instruction": 5}\n', r"s\.jsonl:1: 'instruction' must be a string"),
    (b'{"instruction": "  "}\n', r"s\.jsonl:1: 'instruction' is empty"),
    (b'{"instruction": "ok", "instances": "no"}\n', r"s\.jsonl:1: 'instances' must be a list"),
    (b'{"instruction": "ok", "is_classification": "yes"}\n', r"s\.jsonl:1: 'is_classification' must be true or false"),
    (b'{"instruction": "ok"}\n\xff\xfe bad\n', r"s\.jsonl:2: is not UTF-8 text"),
    (b'[1, 2]', r"s\.jsonl: row 1: expected a JSON object"),
    (b'\n\n', r"holds no tasks"),
])
def test_bad_seed_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "s.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        load_seeds(path)
    assert "\n" not in str(info.value)


def test_missing_seed_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file or folder"):
        load_seeds(tmp_path / "nope.jsonl")


def test_repeated_ids_get_suffixes_that_clash_with_nothing(tmp_path):
    """x, x and x#1: the repeat must not become x#1, which another row already is, and nothing may be dropped."""
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"id": i, "instruction": f"Task {n}."}) + "\n"
                            for n, i in enumerate(["x", "x", "x#1"])))
    tasks = load_seeds(path)
    assert [t.id for t in tasks] == ["x", "x#2", "x#1"] and len({t.id for t in tasks}) == 3
