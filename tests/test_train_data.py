"""Reading training data: every export format gives the same conversations; bad input is a one-line error."""

import json

import pytest

from synth.errors import InputFileError
from synth.formats.export import export
from synth.records import chat_messages
from synth.training.data import erase_prompts, fingerprint, load_conversations, split

from train_fixtures.tiny import record, write_run


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run", 6)


@pytest.mark.parametrize("fmt, name", [("openai-chat", "x.jsonl"), ("alpaca", "x.json"), ("sharegpt", "x.jsonl"),
                                       ("hf", "hfdir")])
def test_every_export_format_reads_back_as_the_run(run, tmp_path, fmt, name):
    export(run, fmt, tmp_path / name)
    expected = [chat_messages(record(i)) for i in range(6)]
    assert [c.messages for c in load_conversations(tmp_path / name)] == expected
    assert [c.messages for c in load_conversations(run)] == expected
    assert [c.id for c in load_conversations(run)] == [f"rec-{i:04d}" for i in range(6)]


def test_alpaca_jsonl_without_system_and_records_as_jsonl(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"instruction": "Say hi", "input": "", "output": "Hi"}) + "\n\n"
                    + json.dumps(record(1)) + "\n")
    conversations = load_conversations(path)
    assert conversations[0].messages == [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi"}]
    assert conversations[1].messages == chat_messages(record(1))


def test_a_cut_tail_of_a_run_is_skipped(run):
    with open(run / "data.jsonl", "a") as fh:
        fh.write('{"id": "rec-cut", "task": {"instr')
    assert len(load_conversations(run)) == 6


@pytest.mark.parametrize("content, fragment", [
    ("", "holds no rows"),
    ('{"instruction": "a", "output": "b"}\n{"oops"\n', ":2: is not valid JSON"),
    ('{"colour": "red"}\n', ":1: not a row shape synth knows"),
    ('{"text": "hello"}\n', ":1: the conversation must end with a non-empty assistant"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', ":1: the conversation must end with a non-empty assistant"),
    ('[1, 2]\n', r"d.jsonl: row 1: expected a JSON object"),
])
def test_bad_data_is_an_input_file_error_naming_the_line(tmp_path, content, fragment):
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    with pytest.raises(InputFileError, match=fragment):
        load_conversations(path)


def test_a_missing_source_is_an_input_file_error(tmp_path):
    with pytest.raises(InputFileError, match="no such file or folder"):
        load_conversations(tmp_path / "nope")


def test_split_is_seeded_disjoint_and_capped(run):
    conversations = load_conversations(write_run(run.parent / "big", 50))
    train, evals = split(conversations, 0.1, 200, seed=3)
    assert len(evals) == 5 and len(train) == 45
    assert not {c.id for c in train} & {c.id for c in evals}
    assert [c.id for c in split(conversations, 0.1, 200, seed=3)[1]] == [c.id for c in evals]
    assert [c.id for c in split(conversations, 0.1, 200, seed=4)[1]] != [c.id for c in evals]
    assert len(split(conversations, 0.5, 7, seed=3)[1]) == 7
    assert split(conversations, 0.0, 200, seed=3)[1] == []


def test_prompt_erasing_swaps_the_system_message_only(run):
    conversations = load_conversations(run)
    erased = erase_prompts(conversations, "Be helpful.")
    assert all(c.messages[0] == {"role": "system", "content": "Be helpful."} for c in erased)
    assert [c.messages[1:] for c in erased] == [c.messages[1:] for c in conversations]


def test_fingerprint_names_the_data_file_and_its_hash(run):
    first = fingerprint(run)
    assert first["path"].endswith("data.jsonl") and len(first["sha256"]) == 64
    with open(run / "data.jsonl", "a") as fh:
        fh.write(json.dumps(record(99)) + "\n")
    assert fingerprint(run)["sha256"] != first["sha256"]


def test_gzipped_jsonl_loads_and_damaged_bytes_are_one_line(tmp_path):
    import gzip

    text = "".join(json.dumps(record(i)) + "\n" for i in range(3))
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    assert [c.id for c in load_conversations(tmp_path / "d.jsonl.gz")] == ["rec-0000", "rec-0001", "rec-0002"]
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(text.encode())[:40])
    with pytest.raises(InputFileError, match="not a complete gzip file"):
        load_conversations(tmp_path / "cut.jsonl.gz")
    (tmp_path / "latin.jsonl").write_bytes(text.encode() + b'{"instruction": "caf\xe9"}\n')
    with pytest.raises(InputFileError, match=r"latin.jsonl:4.*not UTF-8"):
        load_conversations(tmp_path / "latin.jsonl")
