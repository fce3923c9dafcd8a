import pytest

from synth.errors import PromptError
from synth.generation.kinds import KINDS
from synth.prompts import render, system_messages, system_messages_for, template_hash, template_names
from synth.generation.stages import TEMPLATES


def test_every_stage_template_ships():
    assert set(TEMPLATES) <= set(template_names())


def test_missing_variable_is_an_error():
    with pytest.raises(PromptError, match="instruction"):
        render("classify")


def test_render_fills_variables():
    text = render("classify", instruction="Is water wet?")
    assert text.rstrip().splitlines()[-2] == "Task: Is water wet?"


def test_template_hash_is_short_and_stable():
    assert template_hash("bootstrap") == template_hash("bootstrap")
    assert len(template_hash("bootstrap")) == 12


def test_system_message_library():
    messages = system_messages()
    assert len(messages) >= 16
    assert len({m.id for m in messages}) == len(messages)
    for kind in KINDS:
        assert len(system_messages_for(kind)) >= 2, kind
