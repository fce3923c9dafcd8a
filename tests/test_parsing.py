import pytest
from hypothesis import given, settings, strategies as st

from synth.generation.parsing import parse_instances, parse_numbered_list, parse_yes_no


@pytest.mark.parametrize("text, expected", [
    ("9. Plan a picnic.\n10. Name two rivers in Asia.", ["Plan a picnic.", "Name two rivers in Asia."]),
    ("Task 9: Plan a picnic.\nTask 10) Name two rivers.", ["Plan a picnic.", "Name two rivers."]),
    ("Sure! Here are tasks:\n1. **Plan a picnic.**\n2. \"Name two rivers.\"", ["Plan a picnic.", "Name two rivers."]),
    ("1. Rewrite the sentence\n   so that it is passive.\n2. Add numbers.", ["Rewrite the sentence so that it is passive.", "Add numbers."]),
    ("- Plan a picnic.\n- Name two rivers.", ["Plan a picnic.", "Name two rivers."]),
    ("no list here at all", []),
    ("", []),
    ("3.\n4. Real item", ["Real item"]),
])
def test_numbered_list(text, expected):
    assert parse_numbered_list(text) == expected


def test_instances_input_first():
    text = "Input: 2 + 2\nOutput: 4\n\nInput: <none>\nOutput: Zero is even.\nInput: dangling"
    assert parse_instances(text) == [{"input": "2 + 2", "output": "4"}, {"input": "", "output": "Zero is even."}]


def test_instances_output_first_and_multiline():
    text = "Label: Positive\nInput: I loved it.\nIt was great.\nLabel: Negative\nInput: Awful."
    assert parse_instances(text, output_first=True) == [
        {"input": "I loved it.\nIt was great.", "output": "Positive"},
        {"input": "Awful.", "output": "Negative"},
    ]


def test_instances_output_without_input():
    assert parse_instances("Output: Paris") == [{"input": "", "output": "Paris"}]


@pytest.mark.parametrize("text, expected", [("Yes", True), ("no.", False), ("Answer: YES, because", True), ("maybe", None)])
def test_yes_no(text, expected):
    assert parse_yes_no(text) is expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parsers_never_crash(text):
    for item in parse_numbered_list(text):
        assert item and item == item.strip()
    for inst in parse_instances(text) + parse_instances(text, output_first=True):
        assert set(inst) == {"input", "output"} and inst["output"]
    assert parse_yes_no(text) in (True, False, None)
