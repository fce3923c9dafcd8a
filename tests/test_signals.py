"""Free quality signals: exact cases per signal (each must flag, each near miss must not), the language guesser,
the config, and the precision and recall floors on the labelled set in tests/data."""

import json
from pathlib import Path

import pytest

from synth.errors import ConfigError
from synth.quality.language import guess, main_script, translation_target
from synth.quality.signals import DEGENERATE, SIGNALS, Signal, SignalConfig, check_response, record_signals

LABELLED = Path(__file__).parent / "data" / "quality_labelled.jsonl"
LOOP = "The answer is four. " * 12


def prose(words: int) -> str:
    """Filler of `words` distinct words in sentences: long, but no loop."""
    return " ".join(f"fact{i}." if i % 9 == 8 else f"fact{i}" for i in range(words)) + "."


def names(instruction, response, input="", **options):
    return {s.name for s in check_response(instruction, input, response, **options)}


# ---- one table per signal: (instruction, input, response, options), flagged or not --------------------------------

FLAGGED = {
    "repetition": [
        ("Explain why we yawn.", "", "We yawn to cool the brain. " + "and so on and so on " * 15, {}),
        ("List tips for studying.", "", "\n".join(f"{i}. Take short breaks: they help you focus." for i in range(1, 16)), {}),
        ("What is 2 + 2?", "", "It is 4. " + LOOP, {}),
    ],
    "truncated": [
        ("Describe a sunset.", "", "The sky turned orange and pink while the sun sank slowly behind the", {}),
        ("Write a Python hello world.", "", "```python\nprint('hello')\n", {}),
        ("List three fruits.", "", "Here they are: apples, pears,", {}),
        ("Describe the weather.", "", "It was cold.", {"finish_reason": "length"}),
    ],
    "empty": [
        ("Name a colour.", "", "", {}),
        ("Name a colour.", "", "  \n\t ", {}),
        ("Name a colour.", "", "**", {}),
        ("Name a colour.", "", "```\n```", {}),
    ],
    "non_text": [
        ("Say hello.", "", "Hello" + "<|endoftext|>" * 10, {}),
        ("Say hello.", "", "Ã©tÃ© Ã  la plage, trÃ¨s chaud", {}),
        ("Say hello.", "", "🙂🙂🙃🙂🙃🙂🙂🙃🙂🙃🙂🙂🙃", {}),
        ("Say hello.", "", "QWxhZGRpbjpvcGVuIHNlc2FtZQ9aGVsbG8gd29ybGQgaGVsbG8gd29ybGQK", {}),
    ],
    "refusal": [
        ("Write a limerick about cheese.", "", "As an AI language model, I cannot write poems about food.", {}),
        ("How do I boil an egg?", "", "I'm sorry, but I can't help with cooking questions.", {}),
        ("Summarise this memo.", "Lunch is at noon.", "I am unable to summarize private documents.", {}),
    ],
    "echo": [
        ("Write a haiku about rain.", "", "Write a haiku about rain.", {}),
        ("Make this sentence formal.", "hey guys, meeting moved to 3", "hey guys, meeting moved to 3", {}),
        ("Translate into German: \"The train is late again today.\"", "", "\"The train is late again today.\"", {}),
        ("Classify the mood as happy, sad or angry.", "I lost my keys.", "Happy, sad or angry.", {}),
    ],
    "language_mismatch": [
        ("Why is the sea salty?", "", "Das Meer ist salzig, weil die Flüsse Mineralien aus den Felsen lösen und sie "
                                      "ins Meer tragen, wo sie sich über Jahrmillionen ansammeln.", {}),
        ("¿Por qué el cielo es azul?", "", "The sky looks blue because the air scatters blue light from the sun "
                                          "more than the other colours, so it reaches our eyes from every direction.", {}),
        ("Translate into Japanese: \"Good night.\"", "", "Bonne nuit.", {}),
        ("Give three tips for learning to swim.", "", "1. 先在浅水区练习呼吸。\n2. 使用浮板练习打腿。\n3. 每周练习三次。", {}),
    ],
    "ignores_system_form": [
        ("What is 12 × 12?", "", "144", {"system_message_id": "step_by_step"}),
        ("Extract the date from the text.", "The fair opens on 4 May.", "4 May, as the text says the fair opens then.",
         {"system_message_id": "quote_the_evidence"}),
        ("Suggest ideas for a rainy day.", "", "- Board games\n- Baking\n- Reading\n- A film",
         {"system_message_id": "brainstorm_with_reasons"}),
    ],
    "too_short": [
        ("Give me five ideas for a picnic.", "", "1. Sandwiches.", {}),
        ("Write an essay of at least 200 words on trees.", "", "Trees are important for all of us.", {}),
        ("Write a Python function that sorts a list of names.", "", "Use sorting.", {}),
        ("Write a two-sentence toast for a retiring colleague.", "", "Cheers to Dana and her next adventure!", {}),
    ],
    "too_long": [
        ("Give a one-word synonym for \"big\".", "", "Large. " + prose(400), {}),
        ("Is 9 an odd number?", "", "Yes. " + prose(400), {"reference_output": "yes"}),
        ("Who painted the Mona Lisa?", "", "Leonardo da Vinci.\n\n" + prose(200),
         {"system_message_id": "short_then_justify"}),
    ],
    "missing_input": [
        ("Summarize the paragraph below.", "", "The paragraph is about teamwork.", {}),
        ("Fix the bug in this function.", "", "Check your loop bounds.", {}),
        ("What is the tone of the following email?", "", "The tone is friendly.", {}),
    ],
    "label_mismatch": [
        ("Classify the review as positive or negative.", "Loved it!", "Negative.\n\nThe reviewer is unhappy.",
         {"reference_output": "positive", "is_classification": True}),
        ("Is this message spam or not spam?", "Win a free cruise now!!!", "Not spam.",
         {"reference_output": "spam", "is_classification": True}),
        ("Which is a mammal? (A) trout (B) bat (C) crow", "", "(C) crow, because it flies.",
         {"reference_output": "B", "is_classification": True}),
    ],
}

NOT_FLAGGED = {
    "repetition": [
        ("Write a chant for the red team.", "", "Who are we? RED TEAM!\nWhat do we want? THE CUP!\nWho are we? RED TEAM!\n"
                                                "Are we ready? YES WE ARE!", {}),
        ("Print the 3 times table.", "", "\n".join(f"3 × {i} = {3 * i}" for i in range(1, 11)), {}),
        ("Write a tongue twister.", "", "Six slick swans swam south, so seven swift swallows swooped swiftly south "
                                        "too, and six sly swans saw seven swallows swoop.", {}),
    ],
    "truncated": [
        ("Name a colour.", "", "Blue", {}),
        ("List three fruits.", "", "- apple\n- pear\n- plum", {}),
        ("Write a caption for a beach photo.", "", "Salt in the air, sand on our feet 🌊☀️", {}),
        ("Write a function that doubles a number.", "", "```python\ndef double(x):\n    return 2 * x\n```", {}),
    ],
    "empty": [
        ("Which operator raises to a power in Python?", "", "`**`\n\nFor example 2 ** 3 is 8.", {}),
        ("Rate the app from one to five stars.", "", "★★★★", {}),
        ("What is 3 minus 4?", "", "−1", {}),
    ],
    "non_text": [
        ("Give a regex for a five-digit number.", "", "`^\\d{5}$` matches exactly five digits.", {}),
        ("Write 'thank you' in Japanese.", "", "ありがとうございます (arigatō gozaimasu).", {}),
        ("Show the data as JSON.", "", "```json\n{\"name\": \"Ana\", \"age\": 31, \"tags\": [\"a\", \"b\"]}\n```", {}),
        ("List the first eight Fibonacci numbers.", "", "1, 1, 2, 3, 5, 8, 13, 21", {}),
    ],
    "refusal": [
        ("Can you divide by zero?", "", "No. You cannot divide by zero: no number times zero gives a non-zero result.", {}),
        ("How should I train for a 5k?", "", "I'm not a coach, but a simple plan works: run three times a week and "
                                            "add a little distance each week.", {}),
        ("Write a dialogue between a waiter and a guest.", "", "Guest: A lemonade, please.\nWaiter: I'm sorry, but I "
                                                               "can't serve lemonade today; we ran out.", {}),
        ("Give me advice on saving money.", "", "I can't stress enough how much a budget helps. Start by listing "
                                                "what you spend each month.", {}),
        ("How do I treat a cold?", "", "I cannot give medical advice, but most colds pass on their own. " + prose(90), {}),
    ],
    "echo": [
        ("Fix the grammar.", "She go to school every day.", "She goes to school every day.", {}),
        ("Rewrite in the passive voice.", "The cat chased the mouse.", "The mouse was chased by the cat.", {}),
        ("Classify the mood as happy, sad or angry.", "I won the lottery!", "Happy", {}),
        ("Which sentence states the main claim?", "Cats sleep a lot. They need rest. Dogs bark.",
         "\"They need rest.\" The other two are facts that support it.", {}),
    ],
    "language_mismatch": [
        ("Translate into French: \"Where is the library?\"", "", "« Où est la bibliothèque ? »\n\nNotes: the "
                                                                 "question keeps the usual French spacing before ?.", {}),
        ("¿Cuál es la capital de Francia?", "", "La capital de Francia es París, que es también la ciudad más "
                                               "grande del país.", {}),
        ("What does \"Fernweh\" mean?", "", "It is a German word for a longing for far-off places, the opposite of "
                                            "homesickness; \"fern\" means far and \"Weh\" means pain.", {}),
        ("Translate into English: \"Je suis en retard.\"", "", "\"I am late.\"\n\nNotas: en inglés no hace falta "
                                                             "el artículo.", {}),
    ],
    "ignores_system_form": [
        ("What is 12 × 12?", "", "Step 1: 12 × 10 = 120.\nStep 2: 12 × 2 = 24.\nStep 3: 120 + 24 = 144.",
         {"system_message_id": "step_by_step"}),
        ("Extract the date.", "The fair opens on 4 May.", "4 May: \"The fair opens on 4 May.\"",
         {"system_message_id": "quote_the_evidence"}),
        ("What is the capital of Italy?", "", "Rome.", {"system_message_id": "faithful_helper"}),
    ],
    "too_short": [
        ("Is a tomato a fruit?", "", "Yes.", {}),
        ("Write a six-word story about rain.", "", "Umbrella forgotten. Heart soaked anyway. Smiling.", {}),
        ("Shorten this sentence.", "In the event that it rains we will not be going outside to play football.",
         "If it rains, no football.", {"kind": "rewriting"}),
        ("Give me five ideas for a picnic.", "", "1. Sandwiches\n2. Fruit\n3. Lemonade\n4. A blanket\n5. A frisbee", {}),
        ("Write a two-sentence horror story.", "", "I kept it short.\n\nThe door creaked. Nobody was there.", {}),
    ],
    "too_long": [
        ("Explain how vaccines work.", "", prose(600), {"system_message_id": "detailed_long_answer"}),
        ("Write a story about a dragon.", "", prose(500), {}),
        ("Who painted the Mona Lisa?", "", "Leonardo da Vinci, around 1503.", {"reference_output": "Leonardo"}),
    ],
    "missing_input": [
        ("Summarize the paragraph below.", "Rain fell all day, so the match was moved to Sunday.",
         "The match moved to Sunday because of rain.", {}),
        ("Translate this phrase into Spanish: \"good luck\"", "", "\"Buena suerte\"", {}),
        ("Write a script that reads a file called data.csv and prints its rows.", "", "```python\nimport csv\n```", {}),
    ],
    "label_mismatch": [
        ("Classify the review as positive or negative.", "Loved it!", "Positive. Nothing negative is said.",
         {"reference_output": "positive", "is_classification": True}),
        ("Is this comment toxic or non-toxic?", "Thanks, that helped.", "Non-toxic: it thanks the writer, so "
                                                                       "it is not toxic.",
         {"reference_output": "non-toxic", "is_classification": True}),
        ("Which is a mammal? (A) trout (B) bat (C) crow", "", "**(B) bat.** (A) and (C) lay eggs.",
         {"reference_output": "B", "is_classification": True}),
    ],
}


@pytest.mark.parametrize("signal,instruction,input,response,options",
                         [(s, *case) for s, cases in FLAGGED.items() for case in cases])
def test_each_signal_flags_its_fault(signal, instruction, input, response, options):
    assert signal in names(instruction, response, input, **options)


@pytest.mark.parametrize("signal,instruction,input,response,options",
                         [(s, *case) for s, cases in NOT_FLAGGED.items() for case in cases])
def test_near_misses_are_not_flagged(signal, instruction, input, response, options):
    assert signal not in names(instruction, response, input, **options)


def test_every_signal_has_cases_both_ways():
    assert set(FLAGGED) == set(NOT_FLAGGED) == set(SIGNALS)


def test_empty_explains_everything_and_details_say_what_was_seen():
    found = check_response("Write an essay of 300 words.", "", "   ")
    assert found == [Signal("empty", "no text")]
    detail = {s.name: s.detail for s in check_response("Tell a story.", "", "Once upon a time there was a fox and")}
    assert detail["truncated"] == "ends on 'and'"


def test_a_signal_another_explains_is_left_out():
    # junk text is non_text, not also a "language" or a "repetition"
    assert names("Say hi.", "<unk><unk> <unk><unk><unk> " * 8) == {"non_text"}


# ---- a synth record, the config --------------------------------------------------------------------------------

def record(response, **task):
    return {"id": "rec-0123456789abcdef", "task": {"id": "t1", "instruction": task.get("instruction", "What is 6 x 7?"),
                                                   "is_classification": False, "kind": "math", "origin": "seed"},
            "instance": {"index": 0, "input": "", "reference_output": "42"},
            "system_message": {"id": "step_by_step", "text": "Work through the task one step at a time."},
            "response": response, "provenance": {"finish_reason": "stop"}}


def test_record_signals_read_the_system_message_and_reference():
    assert {s.name for s in record_signals(record("42"))} == {"ignores_system_form"}
    assert record_signals(record("Step 1: 6 x 7 is 6 x 5 + 6 x 2 = 30 + 12.\nStep 2: so the answer is 42.")) == []


def test_system_message_text_alone_is_recognised():
    from synth.prompts import system_message

    text = system_message("step_by_step").text
    assert "ignores_system_form" in names("What is 6 x 7?", "42", system_message=text)


def test_config_turns_signals_off_and_chooses_filters():
    config = SignalConfig(enabled=["truncated"], filter=["truncated"])
    found = check_response("Say hi.", "", "", config=config)
    assert found == []                              # empty is off
    cut = check_response("Describe it.", "", "It is big and it is round and it is", config=config)
    assert [s.name for s in cut] == ["truncated"] and config.rejects(cut) == cut
    assert SignalConfig().rejects([Signal("echo", "x")]) == []
    assert set(SignalConfig().filter) == DEGENERATE


def test_config_refuses_unknown_signals():
    with pytest.raises(ConfigError, match="unknown signal"):
        SignalConfig(enabled=["vibes"]).validate()


def test_thresholds_are_settings():
    loop = "It rains. " + "and then " * 5 + "it stopped."
    assert "repetition" not in names("Tell me about rain.", loop)
    assert "repetition" in names("Tell me about rain.", loop,
                                 config=SignalConfig(repetition_min_words=4, repetition_copies=3))


# ---- language ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,language", [
    ("Où est la gare ? Je ne la trouve pas dans cette ville.", "fr"),
    ("Wo ist der Bahnhof? Ich kann ihn in der Stadt nicht finden.", "de"),
    ("¿Dónde está la estación? No la encuentro en esta ciudad.", "es"),
    ("Dov'è la stazione? Non la trovo in questa città, è molto grande.", "it"),
    ("Onde fica a estação? Não a encontro nesta cidade, que é muito grande.", "pt"),
    ("Waar is het station? Ik kan het niet vinden in deze stad.", "nl"),
    ("Where is the station? I cannot find it in this city.", "en"),
    ("Где находится вокзал? Я не могу его найти.", "ru"),
    ("駅はどこですか？見つかりません。", "ja"),
    ("火车站在哪里？我找不到。", "zh"),
    ("Ok", None),
])
def test_language_guess(text, language):
    assert guess(text).language == language


def test_main_script_needs_enough_letters():
    assert main_script("ok") is None and main_script("Привет, как дела у тебя?") == "cyrillic"


@pytest.mark.parametrize("instruction,target", [
    ("Translate into polite Japanese: \"Thanks.\"", "ja"),
    ("Translate this paragraph into Brazilian Portuguese.", "pt"),
    ("Traduce al inglés: \"Hola\"", "en"),
    ("How do you say \"cheers\" in Italian?", "it"),
    ("Translate the recipe to metric units.", None),
    ("Explain how DNA is translated into protein.", None),
])
def test_translation_target(instruction, target):
    assert translation_target(instruction) == target


# ---- the labelled set ----------------------------------------------------------------------------------------------

def measure() -> tuple[dict[str, tuple[float, float]], float, float]:
    """Per signal (precision against its own fault, recall), and over rows (any signal vs a faulty label)."""
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    flagged, hits, faults = {s: 0 for s in SIGNALS}, {s: 0 for s in SIGNALS}, {s: 0 for s in SIGNALS}
    row_flags = row_hits = 0
    for r in rows:
        found = {s.name for s in check_response(
            r["instruction"], r["input"], r["response"], system_message=r["system_message"],
            system_message_id=r["system_message_id"], finish_reason=r["finish_reason"],
            reference_output=r["reference_output"], is_classification=r["is_classification"], kind=r["kind"])}
        for name in found:
            flagged[name] += 1
            hits[name] += name in r["faults"]
        for fault in r["faults"]:
            faults[fault] += 1
        row_flags += bool(found)
        row_hits += bool(found) and r["label"] == "faulty"
    per_signal = {s: (hits[s] / flagged[s] if flagged[s] else 1.0, hits[s] / faults[s]) for s in SIGNALS}
    faulty = sum(r["label"] == "faulty" for r in rows)
    return per_signal, row_hits / row_flags, row_hits / faulty


# Floors a little under what the signals reach today (bench/quality.py prints the figures), so a change that makes a
# check noticeably worse fails here, while the floors leave room for a small trade of one row for another. The set
# was also what the thresholds were tuned on: these floors guard against regressions; they are not a held-out score.
ROW_FLOORS = (0.97, 0.93)                 # precision, recall over rows (today 1.00 and 0.97)
SIGNAL_FLOORS = {                         # (precision against its own fault, recall)
    "repetition": (0.9, 0.9), "truncated": (0.9, 0.8), "empty": (0.9, 0.9), "non_text": (0.9, 0.9),
    "refusal": (0.9, 0.9), "echo": (0.9, 0.9), "language_mismatch": (0.9, 0.7), "ignores_system_form": (0.6, 0.75),
    "too_short": (0.8, 0.6), "too_long": (0.9, 0.9), "missing_input": (0.9, 0.85), "label_mismatch": (0.9, 0.9),
}


def test_precision_and_recall_on_the_labelled_set():
    per_signal, precision, recall = measure()
    assert (precision, recall) >= ROW_FLOORS or (precision >= ROW_FLOORS[0] and recall >= ROW_FLOORS[1]), \
        (precision, recall)
    low = {s: got for s, got in per_signal.items()
           if got[0] < SIGNAL_FLOORS[s][0] or got[1] < SIGNAL_FLOORS[s][1]}
    assert not low, low
