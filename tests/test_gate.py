"""The novelty gate with the real bundled all-MiniLM-L6-v2."""

import pytest

from synth.gate.embeddings import shared_embedder
from synth.gate.novelty import NoveltyGate

POOL = [
    ("p1", "Translate the sentence 'good morning' into Spanish."),
    ("p2", "Write a short poem about the ocean at night."),
    ("p3", "Explain how photosynthesis turns sunlight into chemical energy."),
]


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder()


def make_gate(embedder, threshold=0.9):
    gate = NoveltyGate(embedder, threshold)
    gate.add([i for i, _ in POOL], [t for _, t in POOL])
    return gate


def test_embeddings_are_unit_length(embedder):
    vectors = embedder.encode(["one sentence", "another one"])
    assert vectors.shape == (2, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4


def test_near_duplicates_are_rejected_with_their_neighbour(embedder):
    gate = make_gate(embedder)
    verdicts = gate.check(["c1", "c2"], ["Write a short poem about the ocean at night!",
                                         "Explain how photosynthesis converts sunlight into chemical energy."])
    assert [v.accepted for v in verdicts] == [False, False]
    assert [v.neighbour_id for v in verdicts] == ["p2", "p3"]
    assert all(v.score >= 0.9 for v in verdicts)
    assert len(gate) == 3


def test_unrelated_tasks_pass_and_join_the_pool(embedder):
    gate = make_gate(embedder)
    verdicts = gate.check(["c1", "c2"], ["List three ways to reduce household electricity bills.",
                                         "Find the bug in this Python function that reverses a list."])
    assert all(v.accepted for v in verdicts)
    assert all(v.score < 0.9 for v in verdicts)
    assert len(gate) == 5
    again = gate.check(["c3"], ["List three ways to reduce household electricity bills."])
    assert not again[0].accepted and again[0].neighbour_id == "c1"


def test_duplicates_within_one_batch(embedder):
    gate = make_gate(embedder)
    verdicts = gate.check(["a", "b"], ["Name four famous bridges in Europe.", "Name four famous bridges in Europe!"])
    assert verdicts[0].accepted and not verdicts[1].accepted
    assert verdicts[1].neighbour_id == "a"


def test_threshold_is_configurable(embedder):
    strict = make_gate(embedder, threshold=0.3)
    assert not strict.check(["x"], ["Translate 'good night' into French."])[0].accepted


# ---- two stages, index choice and persistence, with a small hand-made embedder -----------------------------


import numpy as np

from synth.errors import ConfigError
from synth.gate.novelty import index_kind_for
from synth.gate.verifier import EmbeddingVerifier, LLMVerifier
from synth.testing import FakeTeacherServer, Reply


class AngleEmbedder:
    """Text "a:DEG" embeds to the unit vector at DEG degrees in a plane, so cosines are exactly cos(difference)."""

    name, dim = "angles", 4

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen += list(texts)
        rows = []
        for text in texts:
            rad = np.radians(float(text.split(":")[1]))
            rows.append([np.cos(rad), np.sin(rad), 0.0, 0.0])
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim)


class ListVerifier:
    stage = "test_verifier"

    def __init__(self, same_pairs=()):
        self.same = {frozenset(p) for p in same_pairs}
        self.asked: list[tuple[str, str]] = []

    def same_task(self, pairs):
        self.asked += pairs
        return [frozenset(p) in self.same for p in pairs]


def angle(deg):
    return f"a:{deg}"


# cos 10 deg = 0.985, cos 30 deg = 0.866, cos 50 deg = 0.643, cos 80 deg = 0.17
def test_two_stage_verifier_runs_only_on_the_borderline_band():
    verifier = ListVerifier(same_pairs=[(angle(30), angle(0))])
    gate = NoveltyGate(AngleEmbedder(), 0.95, recall_threshold=0.6, verifier=verifier)
    gate.add(["pool"], [angle(0)])
    verdicts = gate.check(["sure", "paraphrase", "related", "far"], [angle(10), angle(30), angle(-50), angle(180)])
    assert [(v.accepted, v.stage) for v in verdicts] == [
        (False, "embedding"), (False, "test_verifier"), (True, "test_verifier"), (True, "embedding")]
    assert verdicts[1].neighbour_id == "pool" and abs(verdicts[1].score - 0.866) < 1e-3
    assert sorted(verifier.asked) == sorted([(angle(30), angle(0)), (angle(-50), angle(0))])
    assert gate.verifier_pairs == 2


def test_verifier_judges_borderline_pairs_inside_one_batch():
    verifier = ListVerifier(same_pairs=[(angle(130), angle(100))])
    gate = NoveltyGate(AngleEmbedder(), 0.95, recall_threshold=0.6, verifier=verifier)
    gate.add(["pool"], [angle(0)])
    verdicts = gate.check(["x", "y"], [angle(100), angle(130)])
    assert verdicts[0].accepted and not verdicts[1].accepted
    assert (verdicts[1].neighbour_id, verdicts[1].stage) == ("x", "test_verifier")


def test_without_a_verifier_the_band_is_accepted():
    gate = NoveltyGate(AngleEmbedder(), 0.95, recall_threshold=0.6)
    gate.add(["pool"], [angle(0)])
    assert [v.accepted for v in gate.check(["p"], [angle(30)])] == [True]


def test_recall_threshold_above_threshold_is_refused():
    with pytest.raises(ConfigError):
        NoveltyGate(AngleEmbedder(), 0.8, recall_threshold=0.9)


@pytest.mark.parametrize("size, requested, expected", [
    (10, "auto", "flat"), (1_000_000, "auto", "flat"), (1_000_001, "auto", "hnsw"), (10, "hnsw", "hnsw"),
    (5_000_000, "flat", "flat"),
])
def test_index_kind_by_pool_size(size, requested, expected):
    assert index_kind_for(size, requested) == expected


def test_auto_index_switches_to_hnsw_past_the_flat_limit_and_keeps_working():
    gate = NoveltyGate(AngleEmbedder(), 0.99, flat_limit=5)
    gate.add([f"p{d}" for d in range(0, 50, 10)], [angle(d) for d in range(0, 50, 10)])
    assert gate.index_kind == "flat"
    gate.add(["p90"], [angle(90)])
    assert gate.index_kind == "hnsw" and gate.index.ntotal == 6
    verdicts = gate.check(["dup", "new"], [angle(90.5), angle(200)])
    assert (verdicts[0].accepted, verdicts[0].neighbour_id) == (False, "p90")
    assert verdicts[1].accepted


def test_unknown_index_kind_is_a_config_error():
    with pytest.raises(ConfigError):
        NoveltyGate(AngleEmbedder(), 0.9, index="ivf-magic")


def test_resumed_gate_loads_its_pool_from_the_store_without_embedding(tmp_path):
    store = tmp_path / "gate"
    first = NoveltyGate(AngleEmbedder(), 0.99, store=store)
    first.add(["s1", "s2"], [angle(0), angle(90)])
    first.check(["m1", "m2"], [angle(45), angle(45.1)])
    first.save_index()
    first.check(["m3"], [angle(180)])            # after the snapshot: must be added from the stored vectors

    embedder = AngleEmbedder()
    second = NoveltyGate(embedder, 0.99, store=store)
    assert second.ids == ["s1", "s2", "m1", "m3"] and second.index.ntotal == 4
    second.add(["s1", "s2", "m1", "m3"], [angle(0), angle(90), angle(45), angle(180)])
    assert second.encoded == 0 and embedder.seen == []
    verdict = second.check(["again"], [angle(180.2)])[0]
    assert (verdict.accepted, verdict.neighbour_id) == (False, "m3")
    assert embedder.seen == [angle(180.2)]


def test_store_cuts_a_half_written_tail(tmp_path):
    store = tmp_path / "gate"
    gate = NoveltyGate(AngleEmbedder(), 0.99, store=store)
    gate.add(["a", "b"], [angle(0), angle(90)])
    with open(store / "vectors.f32", "ab") as fh:      # a crash after the vectors, before their items
        fh.write(b"\x00" * 10)
    with open(store / "items.jsonl", "ab") as fh:
        fh.write(b'["c", "a:')
    reopened = NoveltyGate(AngleEmbedder(), 0.99, store=store)
    assert reopened.ids == ["a", "b"]
    reopened.add(["c"], [angle(180)])
    assert NoveltyGate(AngleEmbedder(), 0.99, store=store).ids == ["a", "b", "c"]


def test_store_from_another_embedder_is_refused(tmp_path):
    NoveltyGate(AngleEmbedder(), 0.9, store=tmp_path / "gate").add(["a"], [angle(0)])
    other = AngleEmbedder()
    other.name = "something-else"
    with pytest.raises(ConfigError, match="something-else"):
        NoveltyGate(other, 0.9, store=tmp_path / "gate")


def test_persisted_vectors_are_the_real_minilm_vectors(embedder, tmp_path):
    gate = NoveltyGate(embedder, 0.9, store=tmp_path / "gate")
    gate.add([i for i, _ in POOL], [t for _, t in POOL])
    reloaded = NoveltyGate(embedder, 0.9, store=tmp_path / "gate")
    assert reloaded.encoded == 0
    np.testing.assert_allclose(reloaded.vectors(), embedder.encode([t for _, t in POOL]), atol=1e-5)


# ---- the LLM verifier against the scripted loopback server -----------------------------------------------

def same_task_script(body, attempt):
    prompt = body["messages"][-1]["content"]
    a, b = prompt.split("Task A: ")[1].split("Task B: ")
    same = ("good morning" in a.lower()) == ("good morning" in b.lower()) and "spanish" in a.lower() and "spanish" in b.lower()
    return Reply("Yes" if same else "No", prompt_tokens=50, completion_tokens=1)


def test_llm_verifier_decides_the_band_and_is_cached(embedder, tmp_path):
    from synth.teacher.cache import RequestCache
    from synth.teacher.client import LiteLLMTeacher, TeacherOptions

    pool = [("p1", "Translate 'good morning' into Spanish.")]
    candidates = ["How do you say 'good morning' in Spanish?", "Translate 'good night' into French."]
    cache = RequestCache(tmp_path / "cache.sqlite")
    with FakeTeacherServer(same_task_script) as server:
        options = TeacherOptions(model="openai/judge", api_base=server.url, temperature=0.0, max_tokens=16,
                                 max_retries=0, timeout=5)
        verifier = LLMVerifier(LiteLLMTeacher(options, cache=cache, api_key="sk-test"))
        for round_no in range(2):
            gate = NoveltyGate(embedder, 0.95, recall_threshold=0.3, verifier=verifier)
            gate.add([i for i, _ in pool], [t for _, t in pool])
            verdicts = gate.check(["c1", "c2"], candidates)
            assert [(v.accepted, v.stage) for v in verdicts] == [(False, "llm_verifier"), (True, "llm_verifier")]
            assert verdicts[0].neighbour_id == "p1" and verdicts[0].score < 0.95
        asked = len(server.attempts)
    assert asked == 2                     # the second round came from the cache
    usage = verifier.usage()
    assert usage["calls"] == 4 and usage["cached_calls"] == 2 and usage["prompt_tokens"] == 100
    assert "yes or no" in server.attempts[0].body["messages"][0]["content"]
    verifier.close()


def test_llm_verifier_keeps_one_teacher_so_limits_and_breaker_carry_over():
    """Each batch of pairs goes through the same long-lived teacher: failures seen in one batch still count in the
    next (a fresh teacher per batch would start its outage breaker, and its rate limits, over every time)."""
    from synth.teacher.client import LiteLLMTeacher, TeacherOptions
    from synth.testing import Fault

    with FakeTeacherServer(lambda body, attempt: Fault("status", status=500)) as server:
        options = TeacherOptions(model="openai/judge", api_base=server.url, max_retries=0, timeout=5, max_outage=60)
        teacher = LiteLLMTeacher(options, api_key="sk-test")
        verifier = LLMVerifier(teacher)
        assert verifier.same_task([("task a", "task b")]) == [False]
        assert verifier.same_task([("task c", "task d")]) == [False]
        assert verifier.teacher is teacher and teacher.breaker.consecutive_failures == 2
        assert verifier.usage()["failures"] == 2 and verifier.usage()["calls"] == 2
        verifier.close()


def test_llm_verifier_asks_one_question_for_either_order():
    assert LLMVerifier.messages("b task", "a task") == LLMVerifier.messages("a task", "b task")


def test_embedding_verifier_uses_its_own_threshold():
    verifier = EmbeddingVerifier(AngleEmbedder(), threshold=0.9)
    assert verifier.same_task([(angle(0), angle(20)), (angle(0), angle(40))]) == [True, False]
