"""The ways of making tasks: Self-Instruct with personas, Evol-Instruct and Magpie, each against the scripted
teacher (exact prompts, parsing, elimination, lineage, resume), and Magpie end to end on the embedded model."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

import synth
from synth.errors import ConfigError
from synth.files import read_complete_lines
from synth.generation.methods import Pool, Proposal
from synth.generation.methods.evol import MUTATIONS, Evol, copies_prompt
from synth.generation.methods.self_instruct import SelfInstruct
from synth.generation.personas import load_personas
from synth.prompts import render, template_text
from synth.tasks import Task
from synth.testing import FakeTeacherServer, Reply, explain_reply

from conftest import _TOPICS, pipeline_script

TEACHER = "openai/fake-teacher"


def seeds_file(tmp_path, n=6):
    path = tmp_path / "seeds.jsonl"
    topics = ["volcanoes", "tax forms", "sourdough", "chess", "bird song", "solar panels", "rowing", "tides"]
    path.write_text("".join(json.dumps({"id": f"s{i}", "instruction": f"Describe how {topics[i]} work for a "
                                        f"curious reader in a short paragraph."}) + "\n" for i in range(n)))
    return path


def _topic(text: str, salt: str = "") -> str:
    return _TOPICS[int(hashlib.sha256((text + salt).encode()).hexdigest(), 16) % len(_TOPICS)]


def evol_script(body, attempt):
    prompt = body["messages"][-1]["content"]
    if "You make instruction-following tasks harder" in prompt or "cover more ground" in prompt:
        task = prompt.split("Task:\n", 1)[1].split("\n\nWrite only", 1)[0]
        if "rowing" in task:                                   # a mutation that echoes its own instructions
            return Reply("You make instruction-following tasks harder, one step at a time. Rewrite the task below "
                         "so that it asks for the same thing plus one or two new, concrete requirements")
        topic = _topic(task)
        return Reply(f"Rewritten task: Compare {topic} with one everyday alternative for a city council, "
                     f"weighing cost, risk and fairness, in {len(task) % 5 + 3} numbered steps.")
    return pipeline_script(body, attempt)


# ---- personas -------------------------------------------------------------------------------------------

def test_the_builtin_personas_load_and_a_file_of_lines_too(tmp_path):
    builtin = load_personas("builtin")
    assert len(builtin) >= 200 and len({p.id for p in builtin}) == len(builtin)
    (tmp_path / "p.txt").write_text("A night-shift nurse in Lagos.\n\nA retired ferry pilot in Bergen.\n")
    assert [p.text for p in load_personas(str(tmp_path / "p.txt"))] == ["A night-shift nurse in Lagos.",
                                                                        "A retired ferry pilot in Bergen."]


def test_a_persona_leads_the_bootstrap_prompt_and_is_kept_in_provenance(tmp_path):
    personas = tmp_path / "personas.jsonl"
    personas.write_text("".join(json.dumps({"id": f"p{i}", "persona": f"A beekeeper number {i} in Crete."}) + "\n"
                                for i in range(3)))
    method = SelfInstruct(seed=0, seed_tasks=2, machine_tasks=0, new_tasks=4, personas=load_personas(str(personas)))
    pool = Pool([Task("a", "Name a river."), Task("b", "Sort three numbers.")], [])
    proposal = method.propose(5, pool)
    content = method.request(proposal, pool).messages[0]["content"]
    assert proposal.persona_id in {"p0", "p1", "p2"}
    assert content == render("bootstrap_persona", persona=f"A beekeeper number {proposal.persona_id[1]} in Crete.",
                             num_examples=2, num_new=4, next_number=3,
                             examples="\n".join(f"{i}. {t.instruction}" for i, t in enumerate(
                                 [pool.by_id()[x] for x in proposal.examples], 1)))
    with FakeTeacherServer(pipeline_script) as server:
        result = synth.generate(out=str(tmp_path / "run"), teacher=TEACHER, api_base=server.url, num=4,
                                personas=str(personas), concurrency=4)
        sent = [a.body["messages"][-1]["content"] for a in server.attempts]
    assert result.status == "completed"
    assert any("A beekeeper number" in prompt for prompt in sent)
    records = synth.load_records(tmp_path / "run")
    assert records and all(r["provenance"]["persona_id"] in {"p0", "p1", "p2"} for r in records)
    assert all(r["provenance"]["method"] == "self-instruct" and r["provenance"]["schema_version"] == 2
               for r in records)


# ---- Evol-Instruct ------------------------------------------------------------------------------------

def test_a_mutation_prompt_renders_the_parent_task_exactly():
    pool = Pool([Task("s0", "Explain tides.", instances=[{"input": "for a child", "output": ""}])], [])
    request = Evol(seed=0, rounds=2).request(Proposal(0, "evol", parent_id="s0", mutation="deepen", round=1), pool)
    assert request.messages == [{"role": "user", "content": render("evol_deepen", task="Explain tides.\n\nfor a child")}]


@pytest.mark.parametrize("reply, expected", [
    ("Rewritten task: Explain tides to a sailor, with the moon's role.", "Explain tides to a sailor, with the moon's role."),
    ("**New task:** Name two tidal power plants.", "Name two tidal power plants."),
    ("", "empty_mutation"),
    ("Task:", "empty_mutation"),
])
def test_a_mutation_reply_parses_or_is_rejected_with_a_reason(reply, expected):
    parsed = Evol(seed=0, rounds=2).parse(Proposal(0, "evol", parent_id="s0", mutation="deepen", round=1), reply)
    assert (parsed if isinstance(parsed, str) else parsed[0].text) == expected


def test_a_mutation_that_copies_its_prompt_is_caught():
    template = template_text("evol_constraints")
    assert copies_prompt("Rewrite the task below so that it asks for the same thing plus one or two new, concrete "
                         "requirements", template)
    assert not copies_prompt("Plan a three-day trip to Oslo for a wheelchair user on a budget of 600 euros.", template)


def test_evol_runs_its_rounds_keeps_lineage_and_eliminates(tmp_path):
    with FakeTeacherServer(evol_script) as server:
        result = synth.generate(method="evol", seeds=str(seeds_file(tmp_path, 7)), rounds=2, num=200,
                                out=str(tmp_path / "run"), teacher=TEACHER, api_base=server.url, concurrency=4)
    assert result.status == "completed"
    accepted = [r for r in read_complete_lines(tmp_path / "run" / "tasks.jsonl") if r.get("status") == "accepted"]
    rounds = Counter(r["lineage"]["round"] for r in accepted)
    assert set(rounds) == {1, 2} and rounds[1] >= 4
    by_id = {r["task"]["id"]: r for r in accepted}
    for row in accepted:
        lineage = row["lineage"]
        assert lineage["method"] == "evol" and lineage["mutation"] in MUTATIONS
        assert [m["round"] for m in lineage["mutations"]] == list(range(1, lineage["round"] + 1))
        if lineage["round"] == 2:                           # its parent is a round-1 task that got a record
            assert by_id[lineage["parent_id"]]["lineage"]["round"] == 1
            assert lineage["root_id"] == by_id[lineage["parent_id"]]["lineage"]["root_id"]
    reasons = Counter(r["reason"] for r in read_complete_lines(tmp_path / "run" / "rejected.jsonl"))
    assert reasons["copies_mutation_prompt"] >= 1                      # the rowing seed's mutation echoed its prompt
    records = synth.load_records(tmp_path / "run")
    assert records and all(r["provenance"]["lineage"]["root_id"].startswith("s") for r in records)


def test_evol_resumes_after_a_kill_mid_round_without_asking_twice(tmp_path):
    slow = lambda body, attempt: Reply(evol_script(body, attempt).content, delay=0.3)    # noqa: E731
    with FakeTeacherServer(slow) as server:
        args = [sys.executable, "-m", "synth", "generate", "--method", "evol", "--seeds", str(seeds_file(tmp_path, 6)),
                "--rounds", "2", "--num", "200", "--teacher", TEACHER, "--api-base", server.url,
                "--concurrency", "3", "--out", str(tmp_path / "run")]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "OPENAI_API_KEY": "sk-test"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum("harder" in a.body["messages"][-1]["content"] or "ground" in
                                                  a.body["messages"][-1]["content"] for a in server.attempts) < 4:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        result = synth.generate(resume=str(tmp_path / "run"))
        sent = Counter(a.key for a in server.attempts if a.outcome == "reply")
    assert result.status == "completed"
    # Only the requests in flight at the kill (at most --concurrency 3) are sent again: the killed process never
    # read their replies. Everything answered before the kill comes from the cache.
    assert sum(count - 1 for count in sent.values()) <= 3
    ids = [r["id"] for r in read_complete_lines(tmp_path / "run" / "data.jsonl")]
    assert ids and len(ids) == len(set(ids))


# ---- Magpie -------------------------------------------------------------------------------------------

def magpie_script(body, attempt):
    if "prompt" in body:                                      # the raw completion: a user query, then the turn's end
        topic = _TOPICS[int(body.get("seed") or 0) % len(_TOPICS)]
        return Reply(f"How should a beginner get started with {topic}, and what mistakes should they avoid?"
                     "<|im_end|>\n<|im_start|>assistant\nSure")
    return Reply(explain_reply(body).content)


def test_magpie_asks_with_the_template_prefix_and_answers_the_queries_it_gets(tmp_path):
    from synth.training.student import default_student

    with FakeTeacherServer(magpie_script) as server:
        result = synth.generate(method="magpie", chat_template=str(default_student()), num=5, concurrency=4,
                                out=str(tmp_path / "run"), teacher=TEACHER, api_base=server.url)
        raw = [a.body for a in server.attempts if "prompt" in a.body]
    assert result.status == "completed" and result.records >= 5
    assert raw and all(re.search(r"<\|im_start\|>user\n$", body["prompt"]) for body in raw)
    assert all("<|im_end|>" in body["stop"] for body in raw)
    assert len({body["seed"] for body in raw}) == len(raw)            # each proposal samples with its own seed
    records = synth.load_records(tmp_path / "run")
    assert all(r["task"]["origin"] == "magpie" and r["provenance"]["method"] == "magpie" for r in records)
    assert all("<|im_end|>" not in r["task"]["instruction"] for r in records)


def test_magpie_needs_a_completion_endpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(ConfigError, match="completion endpoint"):
        synth.generate(method="magpie", teacher="gpt-4o-mini", out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
