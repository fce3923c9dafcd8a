"""`synth eval`: batched greedy answers that match one-by-one decoding, a pairwise judge in both orders through the
shared teacher layer (a scripted loopback server, litellm's real client), strict verdicts, the numbers, resume."""

from __future__ import annotations

import json
import math
import re
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings as hyp_settings, strategies as st

from synth.errors import ConfigError, RunFolderError
from synth.evaluation import EvalConfig, evaluate
from synth.evaluation import decode
from synth.evaluation.decode import Padded, greedy, prompt_ids
from synth.evaluation.judge import SCORES, fold, parse_verdict
from synth.evaluation.metrics import bootstrap, lcs_length, length_view, rouge_l, wilson, win_counts
from synth.evaluation.tasks import bundled_tasks_path, held_out_split, load_task_file
from synth.teacher.budget import Budget
from synth.teacher.jobs import VerdictError, latest_rows
from synth.testing import FakeTeacherServer, Reply
from train_fixtures.tiny import make_tiny_student, tiny_config, write_run

PROMPTS = ["Name a river.", "What is two plus two? Answer with the number and one sentence of why.",
           "Write one short line about autumn leaves falling in a quiet park at dusk.", "Say hi."]
LIMIT, NEW_TOKENS = 6, 8
TOLERANCE = 1e-3          # fp32 logits of one prompt, batched or alone: rounding moves them by ~1e-5


# ---------------------------------------------------------------- students and judges

def make_adapter_student(folder: Path, base: Path, seed: int) -> Path:
    """A synth-train-shaped student folder: a LoRA adapter with random (non-zero) weights on `base`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    model.save_pretrained(folder / "adapter")
    (folder / "provenance.json").write_text(json.dumps({"student": str(base)}))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    base = make_tiny_student(root / "tiny")
    return {"root": root, "base": base, "a": make_adapter_student(root / "student_a", base, 1),
            "b": make_adapter_student(root / "student_b", base, 2)}


def answers_in(body: dict) -> tuple[str, str]:
    text = body["messages"][-1]["content"]
    a = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]\n", 1)[0]
    b = text.split("\n\n[Answer B]\n", 1)[1].split("\n\nGive your reasons", 1)[0]
    return a, b


def longer_wins(body: dict, attempt: int) -> Reply:
    """A consistent judge: the longer answer wins, whatever its place."""
    a, b = answers_in(body)
    verdict = "A>B" if len(a) > len(b) else "B>A" if len(b) > len(a) else "A=B"
    return Reply(f"I compared the lengths.\nVerdict: {verdict}")


def always_first(body: dict, attempt: int) -> Reply:
    return Reply("The first one reads better.\n**Verdict: A>>B**")


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")


def run_eval(student, server, out, **changes):
    values = dict(judge="openai/judge", api_base=server.url, tasks="bundled", limit=LIMIT,
                  max_new_tokens=NEW_TOKENS, out=str(out), max_retries=0, timeout=10)
    values.update(changes)
    return evaluate(student, **values)


@pytest.fixture(scope="module")
def answered(tiny, tmp_path_factory):
    """One evaluation's answers (tuned vs base on the tiny student), reused by the judge tests."""
    out = tmp_path_factory.mktemp("answered") / "eval"
    with pytest.MonkeyPatch.context() as patch, FakeTeacherServer(longer_wins) as server:
        patch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        result = run_eval(tiny["a"], server, out)
    return {"out": out, "result": result}


def with_answers(answered, target: Path) -> Path:
    """A new evaluation folder holding the answers (and settings) of the shared one, so no model runs again."""
    target.mkdir(parents=True)
    for name in ("eval_config.json", "answers.jsonl", "answers.meta.json"):
        shutil.copy(answered["out"] / name, target / name)
    return target


# ---------------------------------------------------------------- verdicts

@pytest.mark.parametrize("text, verdict", [
    ("Both fine, A is sharper.\nVerdict: A>B", "A>B"),
    ("Verdict: B>>A", "B>>A"),
    ("reasons\n**Verdict: A=B**", "A=B"),
    ("reasons\nverdict: [b>a].", "B>A"),
    ("reasons\nVerdict: A >> B (A is much better)", "A>>B"),
    ("Verdict: A>B\nso, again:\nVerdict: A>B", "A>B"),
])
def test_verdicts_that_parse(text, verdict):
    assert parse_verdict(text) == {"verdict": verdict, "score": SCORES[verdict]}


@pytest.mark.parametrize("text, reason", [
    ("A is better.", "no_verdict"),
    ("The verdict is clear: A.", "no_verdict"),            # prose, not a verdict line
    ("Verdict: A", "bad_verdict"),
    ("Verdict: A>A", "bad_verdict"),
    ("Verdict: A>B (though B>A on style)", "bad_verdict"),
    ("Verdict: A>B\nVerdict: B>A", "ambiguous_verdict"),
    ("Verdict: C>B", "bad_verdict"),
])
def test_verdicts_that_do_not(text, reason):
    with pytest.raises(VerdictError) as caught:
        parse_verdict(text)
    assert caught.value.reason == reason


prose = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200).filter(
    lambda t: "verdict" not in t.lower())


@hyp_settings(max_examples=200, deadline=None)
@given(prose, st.sampled_from(sorted(SCORES)), prose)
def test_a_verdict_line_anywhere_among_prose_is_found(before, verdict, after):
    assert parse_verdict(f"{before}\nVerdict: {verdict}\n{after}")["verdict"] == verdict


@hyp_settings(max_examples=200, deadline=None)
@given(prose)
def test_prose_without_a_verdict_line_is_a_failure(text):
    with pytest.raises(VerdictError) as caught:
        parse_verdict(text)
    assert caught.value.reason == "no_verdict"


@hyp_settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(sorted(SCORES)), min_size=2, max_size=4).filter(lambda v: len(set(v)) > 1), prose)
def test_disagreeing_verdict_lines_are_a_failure(verdicts, text):
    with pytest.raises(VerdictError) as caught:
        parse_verdict(text + "\n" + "\n".join(f"Verdict: {v}" for v in verdicts))
    assert caught.value.reason == "ambiguous_verdict"


@pytest.mark.parametrize("ab, ba, result, changed, flipped", [
    (1, -1, "win", False, False),       # A first said A; B first (first contestant shown second) said B: consistent
    (2, -1, "win", False, False),
    (-1, 1, "loss", False, False),
    (0, 0, "tie", False, False),
    (1, 1, "tie", True, True),          # whatever was shown first won: a flip, counted as a tie
    (1, 0, "tie", True, False),         # a win in one order and a tie in the other
    (-2, -2, "tie", True, True),
])
def test_the_two_orders_fold_into_one_outcome(ab, ba, result, changed, flipped):
    outcome = fold(ab, ba)
    assert (outcome.result, outcome.changed, outcome.flipped) == (result, changed, flipped)
    assert outcome.margin == ab - ba


# ---------------------------------------------------------------- numbers

def test_wilson_interval_on_a_known_case():
    low, high = wilson(7, 10)                        # the textbook case: 0.3968 to 0.8922
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    assert wilson(0, 10)[0] == pytest.approx(0.0, abs=1e-12) and round(wilson(0, 10)[1], 4) == 0.2775
    assert wilson(0, 0) == (0.0, 1.0)


def test_win_counts_with_intervals_on_a_known_case():
    outcomes = [fold(1, -1)] * 7 + [fold(-1, 1)] * 2 + [fold(0, 0)]
    numbers = win_counts(outcomes, seed=0)
    assert (numbers["win"]["count"], numbers["tie"]["count"], numbers["loss"]["count"]) == (7, 1, 2)
    assert [round(x, 4) for x in numbers["win"]["ci95"]] == [0.3968, 0.8922]
    assert numbers["win_rate"] == pytest.approx(0.75)
    low, high = numbers["win_rate_ci95"]
    assert low < 0.75 < high and 0.4 < low and high <= 1.0
    assert win_counts(outcomes, seed=0)["win_rate_ci95"] == [low, high]          # seeded: the same interval again
    assert bootstrap([1.0] * 5, seed=3) == (1.0, 1.0)


def test_rouge_l_and_its_longest_common_subsequence():
    assert lcs_length("a b c d e".split(), "a c e x".split()) == 3
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("completely different words", "the cat sat") == 0.0
    assert rouge_l("The cat sat.", "the cat sat on the mat") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert rouge_l("", "anything") == 0.0


def _lcs_by_subsets(a, b):
    from functools import lru_cache

    @lru_cache(maxsize=None)
    def best(i, j):
        if i == len(a) or j == len(b):
            return 0
        return best(i + 1, j + 1) + 1 if a[i] == b[j] else max(best(i + 1, j), best(i, j + 1))
    return best(0, 0)


@hyp_settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=12), st.lists(st.sampled_from("abcd"), max_size=12))
def test_lcs_matches_the_recursive_definition(a, b):
    assert lcs_length(a, b) == _lcs_by_subsets(tuple(a), tuple(b)) == lcs_length(b, a)


def test_length_view_bins_by_the_ratio_of_lengths():
    outcomes = [fold(1, -1, "long"), fold(-1, 1, "short"), fold(0, 0, "even")]
    view = length_view(outcomes, {"long": (40, 9), "short": (3, 30), "even": (10, 10)})
    bins = view["ratio_bins"]
    assert bins[">=2"] == {"pairs": 1, "win_rate": 1.0}
    assert bins["0-0.5"] == {"pairs": 1, "win_rate": 0.0}
    assert bins["0.8-1.25"] == {"pairs": 1, "win_rate": 0.5}
    assert view["mean_words_first"] == pytest.approx(53 / 3)


# ---------------------------------------------------------------- prompts

def test_the_bundled_set_is_complete():
    tasks = load_task_file(bundled_tasks_path())
    assert len(tasks) == 180 and len({t.id for t in tasks}) == 180
    assert all(t.reference for t in tasks)
    assert set(Counter(t.kind for t in tasks).values()) == {15}


def test_the_bundled_set_shares_no_task_with_the_seeds():
    """The real novelty gate (MiniLM): every held-out task is far from every seed (cosine below 0.75)."""
    from synth.gate.embeddings import shared_embedder
    from synth.gate.novelty import NoveltyGate
    from synth.generation.seeds import load_seeds
    from synth.resources import seeds_dir

    threshold = 0.75
    seeds = load_seeds(seeds_dir() / "general.jsonl")
    gate = NoveltyGate(shared_embedder(), threshold)
    gate.add([s.id for s in seeds], [s.instruction for s in seeds])
    held = load_task_file(bundled_tasks_path())
    verdicts = gate.check([t.id for t in held], [t.instruction for t in held])
    seed_ids = {s.id for s in seeds}
    against_seeds = [v.score for v in verdicts if v.neighbour_id in seed_ids]
    assert all(v.accepted for v in verdicts)
    assert against_seeds and max(against_seeds) < threshold
    # the gate has teeth: a seed reworded by a word is caught
    echo = gate.check(["echo"], [seeds[0].instruction.rstrip(".") + " please."])[0]
    assert not echo.accepted and echo.neighbour_id == seeds[0].id


def test_a_task_file_of_any_shape_gives_prompts_and_references(tmp_path):
    path = tmp_path / "tasks.jsonl"
    rows = [{"instruction": "Add 2 and 3.", "input": "", "output": "5"},
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                          {"role": "assistant", "content": "Hello."}]},
            {"id": "q", "prompt": "Name a colour.", "reference": "Blue."},
            {"text": "No answer for this one."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = load_task_file(path)
    assert [t.reference for t in tasks] == ["5", "Hello.", "Blue.", None]
    assert tasks[1].messages == rows[1]["messages"][:-1] and tasks[1].system == "Be brief."
    assert tasks[2].id == "q" and tasks[3].prompt == "No answer for this one."


# ---------------------------------------------------------------- batched greedy decoding

def one_by_one(model, prompts, max_new_tokens, stop=2):
    """The reference: model.generate on one prompt at a time, with the logits of every step."""
    found = []
    for ids in prompts:
        x = torch.tensor([ids])
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                             do_sample=False, eos_token_id=[stop], pad_token_id=stop, output_logits=True,
                             return_dict_in_generate=True)
        tokens = out.sequences[0, len(ids):].tolist()
        found.append((tokens[: tokens.index(stop)] if stop in tokens else tokens, [s[0].float() for s in out.logits]))
    return found


def disagreements(batched, single) -> list[str]:
    """Where batched decoding departs from one-by-one decoding: logits that differ by more than the tolerance at
    any step both took on the same prefix, or a different token that is not a near-tie rounding could break."""
    problems = []
    for row, (gen, (tokens, logits)) in enumerate(zip(batched, single)):
        same = next((i for i, (x, y) in enumerate(zip(gen.tokens, tokens)) if x != y), min(len(gen.tokens), len(tokens)))
        for step in range(min(same + 1, len(gen.logits), len(logits))):
            gap = (gen.logits[step] - logits[step]).abs().max().item()
            if gap > TOLERANCE:
                problems.append(f"row {row} step {step}: logits differ by {gap:.2e}")
                break
        else:
            if gen.tokens != tokens:
                top = torch.topk(logits[same], 2).values if same < len(logits) else None
                if top is None or (top[0] - top[1]).item() > 2 * TOLERANCE:
                    problems.append(f"row {row} step {same}: another token, and no near-tie to explain it")
    return problems


def right_padded(prompts, pad_id):
    """A broken layout: pads on the right and no position ids."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([list(p) + [pad_id] * (width - len(p)) for p in prompts])
    mask = torch.tensor([[1] * len(p) + [0] * (width - len(p)) for p in prompts])
    return Padded(ids, mask, None)


LEFT_PADDED = decode.pad_batch


def unmasked(prompts, pad_id):
    """A broken layout: left padding that the attention mask does not hide."""
    good = LEFT_PADDED(prompts, pad_id)
    return Padded(good.input_ids, torch.ones_like(good.attention_mask), good.position_ids)


def check_batched_matches_one_by_one(model, tokenizer, monkeypatch, new_tokens, broken=(right_padded, unmasked)):
    prompts = [prompt_ids(tokenizer, [{"role": "user", "content": p}]) for p in PROMPTS]
    assert len({len(p) for p in prompts}) == len(prompts)           # every row is padded differently
    single = one_by_one(model, prompts, new_tokens)
    batched = greedy(model, prompts, pad_id=tokenizer.pad_token_id, stop_ids={2}, max_new_tokens=new_tokens,
                     keep_logits=True)
    assert disagreements(batched, single) == []
    assert [g.finish_reason for g in batched] == ["stop" if len(t) < new_tokens else "length" for t, _ in single]
    for layout in broken:                                               # the check catches both classic bugs
        monkeypatch.setattr(decode, "pad_batch", layout)
        wrong = greedy(model, prompts, pad_id=tokenizer.pad_token_id, stop_ids={2}, max_new_tokens=new_tokens,
                       keep_logits=True)
        assert disagreements(wrong, single), layout.__name__
    monkeypatch.undo()


@pytest.fixture(scope="module")
def tiny_tuned(tiny):
    """The tiny random model with student A's random adapter folded in: it says more than one token over and over."""
    from peft import PeftModel

    from synth.evaluation.answers import load_base
    from synth.training.student import load_tokenizer

    model = PeftModel.from_pretrained(load_base(tiny["base"], "fp32"), str(tiny["a"] / "adapter"))
    return model.merge_and_unload().eval(), load_tokenizer(tiny["base"])


def test_batched_answers_match_one_by_one_on_a_tiny_random_model(tiny_tuned, monkeypatch):
    check_batched_matches_one_by_one(*tiny_tuned, monkeypatch, 10)


def test_batched_answers_match_one_by_one_on_the_real_student(monkeypatch):
    from synth.evaluation.answers import load_base
    from synth.training.student import default_student, load_tokenizer

    folder = default_student()
    model = load_base(folder, "fp32")
    check_batched_matches_one_by_one(model, load_tokenizer(folder), monkeypatch, 8, broken=())


def test_rows_left_in_the_batch_go_on_as_before_when_one_stops(tiny_tuned):
    model, tokenizer = tiny_tuned
    prompts = [prompt_ids(tokenizer, [{"role": "user", "content": p}]) for p in PROMPTS]
    free = greedy(model, prompts, pad_id=2, stop_ids={2}, max_new_tokens=8)
    stop = free[0].tokens[0]                     # row 0 stops at its first step and leaves the batch (and cache)
    cut = greedy(model, prompts, pad_id=2, stop_ids={2, stop}, max_new_tokens=8)
    assert cut[0].tokens == [] and cut[0].finish_reason == "stop"
    for before, after in zip(free[1:], cut[1:]):
        expected = before.tokens[: before.tokens.index(stop)] if stop in before.tokens else before.tokens
        assert after.tokens == expected
    assert any(len(g.tokens) > 1 for g in cut[1:])


# ---------------------------------------------------------------- answers and the adapter

def test_tuned_and_base_answers_come_from_one_model_with_the_adapter_switched(answered, tiny):
    from synth.evaluation.answers import load_base
    from synth.training.student import load_tokenizer

    rows = [json.loads(line) for line in (answered["out"] / "answers.jsonl").read_text().splitlines()]
    assert Counter(r["model"] for r in rows) == {"tuned": LIMIT, "base": LIMIT}
    assert all(set(r) >= {"prompt", "model", "tokens", "seconds", "finish_reason", "answer"} for r in rows)
    assert all(r["finish_reason"] in ("stop", "length") and r["tokens"] <= NEW_TOKENS for r in rows)
    base = {r["id"]: r for r in rows if r["model"] == "base"}
    tuned = {r["id"]: r for r in rows if r["model"] == "tuned"}
    assert any(base[i]["answer"] != tuned[i]["answer"] for i in base)          # the adapter was on
    # the base answers equal a plain base model's, loaded without any adapter
    model, tokenizer = load_base(tiny["base"], "fp32"), load_tokenizer(tiny["base"])
    tasks = {t.id: t for t in load_task_file(bundled_tasks_path())}
    ids = sorted(base)
    plain = greedy(model, [prompt_ids(tokenizer, tasks[i].messages) for i in ids], pad_id=2, stop_ids={2},
                   max_new_tokens=NEW_TOKENS)
    assert [tokenizer.decode(g.tokens, skip_special_tokens=True).strip() for g in plain] == \
        [base[i]["answer"] for i in ids]
    summary = json.loads((answered["out"] / "summary.json").read_text())
    losses = [summary["models"][m]["reference_loss"] for m in ("tuned", "base")]
    assert all(math.isfinite(x) for x in losses) and losses[0] != losses[1]


def test_two_students_on_one_base_answer_head_to_head(answered, tiny, key, tmp_path):
    with FakeTeacherServer(longer_wins) as server:
        result = run_eval([tiny["a"], tiny["b"]], server, tmp_path / "h2h")
    assert (result.mode, result.first, result.second) == ("students", str(tiny["a"]), str(tiny["b"]))
    rows = [json.loads(line) for line in (tmp_path / "h2h" / "answers.jsonl").read_text().splitlines()]
    first = {r["id"]: r["answer"] for r in rows if r["model"] == str(tiny["a"])}
    second = {r["id"]: r["answer"] for r in rows if r["model"] == str(tiny["b"])}
    tuned = {json.loads(line)["id"]: json.loads(line)["answer"]
             for line in (answered["out"] / "answers.jsonl").read_text().splitlines()
             if json.loads(line)["model"] == "tuned"}
    assert first == tuned                   # student A answers the same beside B as beside its own base
    assert first != second


def test_bf16_runs_on_the_cpu_too(tiny, key, tmp_path):
    with FakeTeacherServer(longer_wins) as server:
        result = run_eval(tiny["a"], server, tmp_path / "bf16", precision="bf16", limit=2)
    assert result.summary["generation"]["dtype"] == "bfloat16"
    assert result.summary["models"]["tuned"]["answers"] == 2


class _FakeVLLM:
    """A stand-in for vllm's LLM, SamplingParams and LoRARequest, backed by transformers + PEFT, so the vLLM
    backend's own code (prompts as token ids, LoRA requests, stop tokens, prompt log-probabilities) runs on a CPU."""

    calls: list = []

    class SamplingParams:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    class LoRARequest:
        def __init__(self, lora_name, lora_int_id, lora_path):
            assert lora_int_id > 0
            self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path

    class LLM:
        def __init__(self, model, dtype, max_model_len, seed, enable_lora=False, max_loras=1, max_lora_rank=16):
            from transformers import AutoModelForCausalLM

            _FakeVLLM.calls.append({"enable_lora": enable_lora, "max_lora_rank": max_lora_rank, "dtype": dtype})
            self.base = AutoModelForCausalLM.from_pretrained(model).eval()
            self.adapters = {}

        def _model(self, lora):
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            if lora is None:
                return self.base
            if lora.lora_int_id not in self.adapters:
                base = AutoModelForCausalLM.from_pretrained(self.base.name_or_path)
                self.adapters[lora.lora_int_id] = PeftModel.from_pretrained(base, lora.lora_path).eval()
            return self.adapters[lora.lora_int_id]

        def generate(self, prompts, params, lora_request=None, use_tqdm=True):
            from types import SimpleNamespace as NS

            model = self._model(lora_request)
            outputs = []
            for prompt in prompts:
                ids = torch.tensor([prompt["prompt_token_ids"]])
                with torch.no_grad():
                    if getattr(params, "prompt_logprobs", None) is not None:
                        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
                        found = [None] + [{t: NS(logprob=logp[i - 1, t].item())} for i, t in enumerate(ids[0].tolist())
                                          if i > 0]
                        outputs.append(NS(prompt_logprobs=found, outputs=[NS(token_ids=[2], finish_reason="stop")]))
                        continue
                    seq = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=params.max_tokens, eos_token_id=params.stop_token_ids,
                                         pad_token_id=2)[0, ids.shape[1]:].tolist()
                stop = next((i for i, t in enumerate(seq) if t in params.stop_token_ids), None)
                tokens = seq if stop is None else seq[: stop + 1]
                outputs.append(NS(outputs=[NS(token_ids=tokens, finish_reason="length" if stop is None else "stop")]))
            return outputs


def test_the_vllm_backend_gives_the_transformers_answers(answered, tiny, key, tmp_path, monkeypatch):
    import importlib.machinery
    import types

    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)      # "installed", for importlib.util.find_spec
    module.LLM, module.SamplingParams = _FakeVLLM.LLM, _FakeVLLM.SamplingParams
    lora, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = _FakeVLLM.LoRARequest
    for name, mod in (("vllm", module), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    with FakeTeacherServer(longer_wins) as server:
        result = run_eval(tiny["a"], server, tmp_path / "vllm", backend="vllm")
    monkeypatch.undo()
    assert _FakeVLLM.calls[-1] == {"enable_lora": True, "max_lora_rank": 8, "dtype": "float32"}
    assert result.summary["generation"]["backend"] == "vllm"
    read = lambda folder: sorted((r["id"], r["model"], r["answer"], r["tokens"], r["finish_reason"])  # noqa: E731
                                 for r in map(json.loads, (folder / "answers.jsonl").read_text().splitlines()))
    assert read(tmp_path / "vllm") == read(answered["out"])
    expected = json.loads((answered["out"] / "summary.json").read_text())["models"]
    for name in ("tuned", "base"):
        assert result.summary["models"][name]["reference_loss"] == pytest.approx(expected[name]["reference_loss"],
                                                                                rel=1e-4)


# ---------------------------------------------------------------- the judge

def test_every_pair_is_judged_in_both_orders(answered):
    result = answered["result"]
    rows = latest_rows(answered["out"] / "judgments.jsonl")
    assert len(rows) == 2 * LIMIT and all(r["status"] == "ok" for r in rows.values())
    answers = {(r["id"], r["model"]): r["answer"] or "(no answer)"
               for r in map(json.loads, (answered["out"] / "answers.jsonl").read_text().splitlines())}
    assert result.status == "completed" and result.wins + result.ties + result.losses == LIMIT
    assert result.summary["position_bias"]["rate"] == 0.0          # a consistent judge never changes its mind
    pairs = {i for i, _ in answers}
    assert result.wins == sum(len(answers[(p, "tuned")]) > len(answers[(p, "base")]) for p in pairs)
    assert result.losses == sum(len(answers[(p, "tuned")]) < len(answers[(p, "base")]) for p in pairs)


def test_the_judge_sees_both_orders_and_a_flip_is_a_tie(answered, key, tmp_path):
    out = with_answers(answered, tmp_path / "flip")
    with FakeTeacherServer(always_first) as server:
        result = run_eval(answered["result"].summary["settings"]["students"][0], server, out)
        bodies = [a.body for a in server.attempts]
    assert len(bodies) == 2 * LIMIT
    shown = Counter(answers_in(b) for b in bodies)
    assert all(shown[(b, a)] for a, b in shown)                         # each pair went out in both orders
    assert (result.wins, result.ties, result.losses) == (0, LIMIT, 0)
    bias = result.summary["position_bias"]
    assert bias["rate"] == 1.0 and bias["flipped_rate"] == 1.0 and bias["favoured_first_shown"] == LIMIT
    assert result.summary["results"]["tie"]["ci95"][0] > 0.5


def test_an_unparseable_verdict_is_a_failure_kept_with_its_raw_text(answered, key, tmp_path):
    out = with_answers(answered, tmp_path / "garbled")

    def sometimes_garbled(body, attempt):
        a, b = answers_in(body)
        return Reply("I cannot decide, both are fine.") if len(a) > len(b) else longer_wins(body, attempt)

    with FakeTeacherServer(sometimes_garbled) as server:
        result = run_eval(answered["result"].summary["settings"]["students"][0], server, out)
    failed = [r for r in latest_rows(out / "judgments.jsonl").values() if r["status"] == "failed"]
    assert failed and all(r["reason"] == "no_verdict" and r["raw"] == "I cannot decide, both are fine."
                          for r in failed)
    assert result.status == "incomplete"
    assert sum(result.summary["unjudged_pairs"].values()) == LIMIT - result.summary["results"]["pairs"]


def test_a_rerun_is_answered_from_the_cache(answered, key, tmp_path):
    out = with_answers(answered, tmp_path / "cached")
    with FakeTeacherServer(longer_wins) as server:
        first = run_eval(answered["result"].summary["settings"]["students"][0], server, out)
        sent = len(server.attempts)
        again = run_eval(answered["result"].summary["settings"]["students"][0], server, out)
        assert len(server.attempts) == sent                     # every judgment was already made
        (out / "judgments.jsonl").unlink()
        third = run_eval(answered["result"].summary["settings"]["students"][0], server, out)
        assert len(server.attempts) == sent                     # made again, from the request cache
    assert first.summary["results"] == again.summary["results"] == third.summary["results"]


def test_max_cost_stops_the_judge_cleanly_and_a_rerun_goes_on(answered, key, tmp_path):
    out = with_answers(answered, tmp_path / "cost")
    student = answered["result"].summary["settings"]["students"][0]
    prices = dict(input_cost=1000.0, output_cost=1000.0, concurrency=1)
    with FakeTeacherServer(longer_wins) as server:
        stopped = run_eval(student, server, out, max_cost=6.0, **prices)
        assert stopped.status == "stopped_budget"
        spent = Budget.with_ledger(None, out / "spend.jsonl")
        spent.close()
        assert 0 < spent.spent <= 6.0
        done = len(latest_rows(out / "judgments.jsonl"))
        assert 0 < done < 2 * LIMIT and len(server.attempts) == done
        finished = run_eval(student, server, out, max_cost=100.0, **prices)
        assert len(server.attempts) == 2 * LIMIT                # nothing judged twice
    assert finished.status == "completed"
    assert finished.summary["judge_usage"]["requests"] == 2 * LIMIT


def synth_eval(*args, env_extra=None, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": "sk-test-not-a-real-key", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "synth", "eval", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def test_resume_after_sigkill_sends_nothing_twice(answered, tmp_path):
    out = with_answers(answered, tmp_path / "killed")
    student = answered["result"].summary["settings"]["students"][0]

    def slow(body, attempt):
        reply = longer_wins(body, attempt)
        reply.delay = 0.2
        return reply

    with FakeTeacherServer(slow) as server:
        args = [student, "--judge", "openai/judge", "--api-base", server.url, "--tasks", "bundled", "--limit", LIMIT,
                "--max-new-tokens", NEW_TOKENS, "--out", out, "--concurrency", 2, "--max-retries", 0,
                "--timeout", 10]
        process = synth_eval(*args)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            judged = (out / "judgments.jsonl").read_bytes().count(b"\n") if (out / "judgments.jsonl").exists() else 0
            if judged >= 3 or process.poll() is not None:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL and 3 <= judged < 2 * LIMIT
        rerun = synth_eval(*args)
        stdout, stderr = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, stderr
        keys = Counter(a.key for a in server.attempts)
    assert len(keys) == 2 * LIMIT
    assert sum(n - 1 for n in keys.values()) <= 2                # at most the two in flight at the kill went again
    assert json.loads((out / "summary.json").read_text())["results"] == answered["result"].summary["results"]
    assert "completed:" in stdout


# ---------------------------------------------------------------- the command line, folders, held-out split

def test_a_trained_student_is_evaluated_on_its_held_out_split(tiny, key, tmp_path):
    from synth.training import train

    data = write_run(tmp_path / "run", 10)
    (data / "manifest.json").write_text('{"status": "completed"}')            # a run folder synth wrote
    student = tmp_path / "students" / "s"
    train(tiny_config(data, student, tiny["base"], max_steps=1, samples=0, eval_fraction=0.3))
    tasks, source = held_out_split(student)
    provenance = json.loads((student / "provenance.json").read_text())
    assert [t.id for t in tasks] == provenance["eval_ids"] and len(tasks) == 3
    assert all(t.reference and t.system for t in tasks) and not source["data_changed"]
    with FakeTeacherServer(longer_wins) as server:
        result = evaluate(student, judge="openai/judge", api_base=server.url, max_new_tokens=6)
    out = student / "evals" / "vs-base-openai-judge"
    assert result.out == out and result.status == "completed"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"]["source"] == "held_out" and summary["tasks"]["count"] == 3
    page = (out / "report.html").read_text()
    links = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page)
    assert links and all(link.startswith("data:image/png;base64,") for link in links)     # nothing fetched
    assert "<script" not in page and "@import" not in page
    assert {p.name for p in out.iterdir()} >= {"summary.json", "answers.jsonl", "judgments.jsonl", "report.html"}
    links = [json.loads(line) for line in (data / "evals.jsonl").read_text().splitlines()]   # for synth report
    assert [(x["eval"], x["student"], x["win_rate"]) for x in links] == [
        (str(out.resolve()), str(student.resolve()), summary["results"]["win_rate"])]


@pytest.mark.parametrize("args, fragment", [
    ([], "pass one student"),
    (["STUDENT", "STUDENT", "--against", "teacher"], "leave --against out"),
    (["nowhere"], "nowhere is not a student"),
    (["STUDENT", "--judge", "openai/judge", "--tasks", "missing.jsonl"], "missing.jsonl"),
    (["STUDENT", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
])
def test_user_errors_are_one_line(tiny, key, args, fragment, monkeypatch, capsys):
    from synth.cli import main

    monkeypatch.setattr(sys, "argv", ["synth", "eval", *[str(tiny["a"]) if a == "STUDENT" else a for a in args]])
    monkeypatch.setattr(signal, "signal", lambda *a: None)           # main() would take over SIGTERM
    with pytest.raises(SystemExit) as caught:
        main()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert caught.value.code == 2 and "Traceback" not in err
    assert len(lines) == 1 and fragment in lines[0], err


def test_other_settings_in_a_used_folder_are_refused_unless_overwrite(answered, key, tmp_path):
    out = with_answers(answered, tmp_path / "used")
    student = answered["result"].summary["settings"]["students"][0]
    with FakeTeacherServer(longer_wins) as server:
        run_eval(student, server, out)
        sent = len(server.attempts)
        with pytest.raises(RunFolderError, match="other settings \\(precision\\).*--overwrite"):
            run_eval(student, server, out, precision="fp32")
        (out / "NOTES.md").write_text("mine")
        with pytest.raises(RunFolderError, match="NOTES.md"):
            run_eval(student, server, out, precision="fp32", overwrite=True)
        (out / "NOTES.md").unlink()
        replaced = run_eval(student, server, out, precision="fp32", overwrite=True)
        assert len(server.attempts) == sent          # the same judgments again, from the replaced folder's cache
    assert replaced.summary["settings"]["precision"] == "fp32" and replaced.status == "completed"
    assert sorted(p.name for p in out.parent.iterdir()) == ["used"]          # nothing left aside


def test_settings_are_checked_before_anything_runs(tiny):
    with pytest.raises(ConfigError, match="leave --against out"):
        EvalConfig.resolve(flags={"students": ["a", "b"], "against": "teacher"})
    with pytest.raises(ConfigError, match="--max-new-tokens must be at least 1"):
        EvalConfig.resolve(flags={"students": ["a"], "max_new_tokens": 0})
    with pytest.raises(ConfigError, match="is or holds the student"):
        evaluate(tiny["a"], judge="local", out=str(tiny["a"]))


def test_the_embedded_judge_gives_verdicts_that_parse(tmp_path):
    """The real SmolLM2 judge on llama.cpp, under the verdict grammar: both orders of a pair come back parsed."""
    import asyncio

    from synth.evaluation.api import judge_session
    from synth.evaluation.judge import Pair, pair_jobs
    from synth.teacher.jobs import run_jobs

    config = EvalConfig(students=["s"], max_tokens=128)
    jobs = pair_jobs([Pair("p", "What is 2 + 2?", "tuned", "base", "4", "The answer is 5.", "4")])
    with judge_session(config, tmp_path, None) as judge:
        result = asyncio.run(run_jobs(judge, jobs, parse_verdict, tmp_path / "judgments.jsonl"))
    rows = latest_rows(tmp_path / "judgments.jsonl")
    assert result.answered == 2, rows
    assert all(r["result"]["verdict"] in SCORES and r["raw"].splitlines()[-1].startswith("Verdict: ")
               for r in rows.values())
