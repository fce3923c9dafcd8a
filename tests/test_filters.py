import pytest

from synth.generation.filters import FilterConfig, filter_reason


@pytest.mark.parametrize("instruction, reason", [
    ("Summarize this.", "too_short"),
    ("Explain " + "very " * 160 + "much.", "too_long"),
    ("Describe the picture of a sunset over the sea.", "blacklisted_keyword:picture"),
    ("Plot the growth of the company over ten years.", "blacklisted_keyword:plot"),
    ("Write a program that sorts a list of numbers.", "banned_prefix:write_a_program"),
    ("\"Quoted\" instruction that starts with punctuation.", "starts_with_punctuation"),
    ("Écris un poème sur la mer et le vent.", "starts_with_non_ascii"),
    ("Give three tips for staying focused while studying.", None),
    ("Explain what a mapping in Python is used for.", None),   # whole words only: "mapping" is not "map"
])
def test_default_filters(instruction, reason):
    assert filter_reason(instruction, FilterConfig()) == reason


def test_filters_are_configurable():
    config = FilterConfig(min_words=2, blacklist=("tomato",), banned_prefixes=())
    assert filter_reason("Summarize this.", config) is None
    assert filter_reason("Write a program that adds two numbers.", config) is None
    assert filter_reason("Describe how to grow a tomato plant.", config) == "blacklisted_keyword:tomato"
    assert filter_reason("Hi", FilterConfig(enabled=False)) is None
