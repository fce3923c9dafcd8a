"""The novelty gate with the real bundled all-MiniLM-L6-v2."""

import pytest

from synth.embeddings import shared_embedder
from synth.gate import NoveltyGate

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
