"""The loss mask: only assistant tokens are trained, up to and including the end-of-turn token."""

import pytest
from transformers import AutoTokenizer

from synth.training.errors import ChatTemplateError
from synth.training.masking import IGNORE, Encoded, encode_conversation, fit_length, stop_token_ids
from synth.training.student import default_student

MESSAGES = [
    {"role": "system", "content": "You explain your reasoning."},
    {"role": "user", "content": "Add 2 and 3."},
    {"role": "assistant", "content": "2 plus 3 makes 5. The answer is 5."},
]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(default_student()))


def trained_text(tokenizer, encoded):
    return tokenizer.decode([t for t, l in zip(encoded.input_ids, encoded.labels) if l != IGNORE])


def test_only_the_answer_and_its_end_of_turn_are_trained(tokenizer):
    encoded = encode_conversation(MESSAGES, tokenizer, stop_token_ids(tokenizer))
    assert trained_text(tokenizer, encoded) == "2 plus 3 makes 5. The answer is 5.<|im_end|>"
    assert encoded.labels[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    trained = [l != IGNORE for l in encoded.labels]
    first = trained.index(True)
    assert not any(trained[:first]) and all(trained[first:])
    prompt = tokenizer.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(encoded.input_ids[:first]) == prompt


def test_ids_match_the_template_tokenisation_used_at_serving(tokenizer):
    encoded = encode_conversation(MESSAGES, tokenizer, stop_token_ids(tokenizer))
    served = tokenizer.apply_chat_template(MESSAGES, tokenize=True, return_dict=True)["input_ids"]
    assert served[: len(encoded.input_ids)] == encoded.input_ids
    assert tokenizer.decode(served[len(encoded.input_ids):]) == "\n"     # only the newline after <|im_end|> is dropped
    assert encoded.labels[:-1] == [IGNORE] * (len(encoded.labels) - encoded.trained_tokens) + encoded.input_ids[
        len(encoded.labels) - encoded.trained_tokens: -1]


def test_every_assistant_turn_of_a_multi_turn_chat_is_trained(tokenizer):
    chat = MESSAGES + [{"role": "user", "content": "And 4 and 4?"}, {"role": "assistant", "content": "That is 8."}]
    encoded = encode_conversation(chat, tokenizer, stop_token_ids(tokenizer))
    assert trained_text(tokenizer, encoded) == "2 plus 3 makes 5. The answer is 5.<|im_end|>That is 8.<|im_end|>"


def test_a_template_that_writes_no_end_token_gets_eos_appended(tokenizer):
    plain = AutoTokenizer.from_pretrained(str(default_student()))
    plain.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                           "{% if add_generation_prompt %}assistant: {% endif %}")
    encoded = encode_conversation(MESSAGES, plain, stop_token_ids(plain))
    assert encoded.input_ids[-1] == plain.eos_token_id and encoded.labels[-1] == plain.eos_token_id
    assert trained_text(plain, encoded) == "2 plus 3 makes 5. The answer is 5.\n<|im_end|>"


@pytest.mark.parametrize("template, fragment", [
    ("{{ raise_exception('System role not supported') }}", "System role not supported"),
    (None, "no chat template"),
    ("{% for m in messages | reverse %}{{ m['content'] }}|{% endfor %}", "cannot be located"),
])
def test_a_template_that_cannot_render_is_a_chat_template_error(template, fragment):
    broken = AutoTokenizer.from_pretrained(str(default_student()))
    broken.chat_template = template
    with pytest.raises(ChatTemplateError, match=fragment):
        encode_conversation(MESSAGES, broken, stop_token_ids(broken))


def test_overlong_examples_are_truncated_or_dropped():
    encoded = Encoded(list(range(10)), [IGNORE] * 4 + list(range(4, 10)))
    assert fit_length(encoded, 10, "drop") is encoded
    assert fit_length(encoded, 6, "drop") is None
    cut = fit_length(encoded, 6, "truncate")
    assert cut.input_ids == [0, 1, 2, 3, 4, 5] and cut.trained_tokens == 2
    assert fit_length(encoded, 4, "truncate") is None          # nothing left to learn from
