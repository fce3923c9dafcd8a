"""`synth select` on sets whose right answer is known: six topics, each asked three near-identical ways, with judge
scores that make one way the best. The gate and the strategies run on the real MiniLM; the rest on a small exact
embedder."""

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from synth.cli import app as synth_app
from synth.errors import ConfigError
from synth.gate.embeddings import shared_embedder
from synth.quality.select import (SelectConfig, TimedEmbedder, complexity_proxy, select, select_rows,
                                  selection_path)
from synth.formats import Example

GROUPS = [
    ["Explain how photosynthesis works in plants.", "Explain how photosynthesis works in green plants.",
     "Please explain how photosynthesis works in plants."],
    ["Write a short poem about the ocean at night.", "Write a short poem about the sea at night.",
     "Write a short poem about the ocean at nighttime."],
    ["List three tips for saving money on groceries.", "List three good tips for saving money on groceries.",
     "List 3 tips for saving money on groceries."],
    ["Translate 'good morning' into Spanish.", "Translate 'good morning' into the Spanish language.",
     "Translate \"good morning\" into Spanish."],
    ["What causes earthquakes along fault lines?", "What causes earthquakes along tectonic fault lines?",
     "What causes the earthquakes along fault lines?"],
    ["Give me a recipe for vegetarian lasagne.", "Give me a recipe for a vegetarian lasagne.",
     "Give me a recipe for vegetarian lasagne, please."],
]
THRESHOLD = 0.85        # every pair within a group is at least 0.90 similar under MiniLM, across groups at most 0.3


def best_of(group: int) -> int:
    return group % 3     # the best-scored way of asking is not always the first


def rows():
    return [{"id": f"g{g}v{v}", "instruction": text, "input": "",
             "output": f"Here is a careful, complete answer to the request about topic {g}, with an example."}
            for g, group in enumerate(GROUPS) for v, text in enumerate(group)]


def score_of(row_id: str) -> tuple[int, int]:
    group, variant = int(row_id[1]), int(row_id[3])
    return (5, 4) if variant == best_of(group) else (3 - (variant + group) % 2, 3)      # 20 against 9 or 6


def write_dataset(folder, data=None, scores=True, name="data.jsonl"):
    data = rows() if data is None else data
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    if scores:
        lines = []
        for row in data:
            for rubric, value in zip(("quality", "complexity"), score_of(row["id"])):
                lines.append({"id": f"{row['id']}#{rubric}", "record_id": row["id"], "rubric": rubric,
                              "status": "ok", "result": {"score": value, "reason": f"{rubric} {value}"}})
        (folder / "data.scores.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def minilm():
    """The real MiniLM, remembering what it embedded: the tests ask about the same 18 sentences again and again."""
    return TimedEmbedder(shared_embedder())


def similarities(embedder, texts):
    vectors = embedder.encode(texts)
    return vectors @ vectors.T


# ---- deita with the real MiniLM ----------------------------------------------------------------------------------

def test_deita_keeps_the_best_way_of_asking_each_topic(tmp_path, minilm):
    source = write_dataset(tmp_path)      # a budget of 18: the walk goes through every row, so each gets a verdict
    result = select(source, tmp_path / "best.jsonl", SelectConfig(budget=18, threshold=THRESHOLD), embedder=minilm)
    kept = read_jsonl(tmp_path / "best.jsonl")
    assert {r["id"] for r in kept} == {f"g{g}v{best_of(g)}" for g in range(6)}
    assert all(r in rows() for r in kept)                               # selected ⊆ input, rows unchanged
    sims = similarities(minilm, [r["instruction"] for r in kept])
    assert (sims[np.triu_indices(len(kept), 1)] < THRESHOLD).all()
    assert "judge quality x complexity" in result.ranked_by
    details = json.loads((tmp_path / "best.selection.json").read_text())
    assert [k["rank"] for k in details["kept"]] == list(range(1, 7))
    assert details["kept"][0]["scores"]["quality"] == {"score": 5, "reason": "quality 5"}
    assert all(k["nearest_kept"] in {r["id"] for r in kept} and k["similarity"] < THRESHOLD for k in details["kept"])
    for row in details["dropped"]:                                       # every other way of asking: too similar
        group = int(row["id"][1])
        assert row["reason"] == "too_similar" and row["kept_id"] == f"g{group}v{best_of(group)}", row
        assert row["similarity"] >= THRESHOLD and "too similar to kept row" in row["detail"]
    assert (result.total, result.selected, dict(result.dropped)) == (18, 6, {"too_similar": 12})


def test_deita_beats_random_on_mean_score_without_losing_diversity(tmp_path, minilm):
    source = write_dataset(tmp_path)

    def picked(strategy, seed=0):
        out = tmp_path / f"{strategy}{seed}.jsonl"
        select(source, out, SelectConfig(budget=6, strategy=strategy, seed=seed, threshold=THRESHOLD), embedder=minilm)
        chosen = read_jsonl(out)
        sims = similarities(minilm, [r["instruction"] for r in chosen])
        mean_score = np.mean([np.prod(score_of(r["id"])) for r in chosen])
        return mean_score, float(np.mean(1 - sims[np.triu_indices(len(chosen), 1)]))

    deita_score, deita_diversity = picked("deita")
    randoms = [picked("random", seed) for seed in range(6)]
    assert deita_score == 20 and deita_score > max(score for score, _ in randoms)
    assert deita_diversity >= np.mean([diversity for _, diversity in randoms])


def test_the_budget_cut_is_a_reason_and_the_budget_holds(tmp_path, minilm):
    source = write_dataset(tmp_path)
    result = select(source, tmp_path / "best.jsonl", SelectConfig(budget=4, threshold=THRESHOLD), embedder=minilm)
    assert result.selected == 4 and len(read_jsonl(tmp_path / "best.jsonl")) == 4
    details = json.loads((tmp_path / "best.selection.json").read_text())
    cut = [d for d in details["dropped"] if d["reason"] == "below_budget_cut"]
    assert cut and all("after the budget of 4 was filled" in d["detail"] for d in cut)
    assert len(details["kept"]) + len(details["dropped"]) == 18


# ---- the other strategies, on an exact embedder -----------------------------------------------------------------

class GroupEmbedder:
    """Each topic a direction of its own; its ways of asking lean slightly apart (similarity 0.95 within a topic,
    0 across)."""

    name, dim = "groups", 8

    def __init__(self):
        self.calls = 0

    def encode(self, texts):
        self.calls += len(texts)
        vectors = []
        for text in texts:
            group, variant = next((g, v) for g, grp in enumerate(GROUPS) for v, t in enumerate(grp) if t == text)
            vector = np.zeros(self.dim, dtype=np.float32)
            vector[group] = 1.0
            vector[6 + variant % 2] = 0.33 * (1 if variant else 0)
            vectors.append(vector / np.linalg.norm(vector))
        return np.stack(vectors)


@pytest.mark.parametrize("budget,expected_groups", [(3, 3), (6, 6), (10, 6)])
def test_diverse_takes_one_row_per_topic_before_any_repeat(tmp_path, budget, expected_groups):
    source = write_dataset(tmp_path, scores=False)
    result = select(source, tmp_path / "d.jsonl", SelectConfig(budget=budget, strategy="diverse", threshold=0.9),
                    embedder=GroupEmbedder())
    kept = read_jsonl(tmp_path / "d.jsonl")
    assert len({r["id"][:2] for r in kept}) == len(kept) == expected_groups      # k-center never repeats a topic
    assert result.selected == min(budget, 6)                                    # the rest all reach the threshold
    if budget == 10:
        assert dict(result.dropped) == {"too_similar": 12}


def test_quality_takes_the_top_scores_and_random_is_seeded(tmp_path):
    source = write_dataset(tmp_path)
    select(source, tmp_path / "q.jsonl", SelectConfig(budget=6, strategy="quality"), embedder=GroupEmbedder())
    assert {r["id"] for r in read_jsonl(tmp_path / "q.jsonl")} == {f"g{g}v{best_of(g)}" for g in range(6)}
    runs = []
    for name in ("r1", "r2"):
        select(source, tmp_path / f"{name}.jsonl", SelectConfig(budget=5, strategy="random", seed=3),
               embedder=GroupEmbedder())
        runs.append(read_jsonl(tmp_path / f"{name}.jsonl"))
    assert runs[0] == runs[1] and len(runs[0]) == 5


def test_without_scores_deita_ranks_by_the_free_signals_and_says_so(tmp_path):
    data = rows()
    data[0]["output"] = "I'm sorry, but I cannot help with that request."          # refusal: filtered
    data[4]["output"] = "Bonjour à tous, voici une réponse complète avec un exemple pour vous et pour la classe."
    source = write_dataset(tmp_path, data, scores=False)
    result = select(source, tmp_path / "best.jsonl", SelectConfig(budget=18, threshold=0.99),
                    embedder=GroupEmbedder())
    assert "free signals alone" in result.ranked_by and "no judge scores" in result.ranked_by
    details = json.loads((tmp_path / "best.selection.json").read_text())
    flagged = [d for d in details["dropped"] if d["reason"] == "flagged"]
    assert [d["id"] for d in flagged] == ["g0v0"] and "refusal" in flagged[0]["detail"]
    order = [k["id"] for k in details["kept"]]
    assert order[-1] == "g1v1" and details["kept"][-1]["signals"][0]["name"] == "language_mismatch"


def test_keep_flagged_keeps_them(tmp_path):
    data = rows()
    data[0]["output"] = ""
    source = write_dataset(tmp_path, data, scores=False)
    result = select(source, tmp_path / "b.jsonl", SelectConfig(budget=18, threshold=0.99, keep_flagged=True),
                    embedder=GroupEmbedder())
    assert result.selected == 18


def test_deita_embeds_only_as_far_as_its_walk_goes(tmp_path):
    source = write_dataset(tmp_path)
    embedder = GroupEmbedder()
    select(source, tmp_path / "best.jsonl", SelectConfig(budget=2, batch_size=64), embedder=embedder)
    assert embedder.calls == 2                # the two best rows, and not one more (kept rows are not re-embedded)


# ---- datasets and formats ------------------------------------------------------------------------------------------

def test_reads_an_alpaca_file_and_writes_another_format(tmp_path, minilm, monkeypatch):
    monkeypatch.setattr("synth.quality.select.shared_embedder", lambda name: minilm)   # the same MiniLM, warm
    alpaca = [{k: v for k, v in r.items() if k != "id"} for r in rows()]
    source = tmp_path / "alpaca_data.json"
    source.write_text(json.dumps(alpaca), encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(synth_app, ["select", str(source), "--budget", "6", "--threshold", str(THRESHOLD),
                                     "--format", "sharegpt", "--out", str(tmp_path / "best.jsonl")])
    assert done.exit_code == 0, done.output
    assert "selected 6 of 18 rows (deita)" in done.output and "free signals alone" in done.output
    kept = read_jsonl(tmp_path / "best.jsonl")
    assert len(kept) == 6 and all(r["conversations"][0]["from"] == "human" for r in kept)
    asked = [r["conversations"][0]["value"] for r in kept]
    assert len({next(g for g, grp in enumerate(GROUPS) if text in grp) for text in asked}) == 6


def test_select_rows_returns_the_chosen_rows_for_training():
    scores = {f"g{g}v{v}": dict(zip(("quality", "complexity"), ((s, "r") for s in score_of(f"g{g}v{v}"))))
              for g, v in itertools.product(range(6), range(3))}
    chosen = select_rows(rows(), 6, "deita", scores=scores, embedder=GroupEmbedder(),
                         config=SelectConfig(threshold=0.9))
    assert {r["id"] for r in chosen} == {f"g{g}v{best_of(g)}" for g in range(6)}


def test_select_rows_takes_rows_as_read_rows_gives_them(tmp_path):
    from synth.formats import read_rows

    data = [{k: v for k, v in r.items() if k != "id"} for r in rows()]        # no ids: scores are keyed row-N
    source = write_dataset(tmp_path, data, scores=False)
    scores = {f"row-{n}": {"quality": (5 if n == 18 else 2, "r")} for n in range(1, 19)}
    read, embedder = read_rows(source), GroupEmbedder()
    chosen = select_rows(read, 1, "quality", scores=scores, embedder=embedder)
    assert chosen == [read[17]] and chosen[0].line == 18
    assert embedder.calls == 0                   # ranking by score needs no embedding when no report is written


def test_outputs_never_touch_the_input(tmp_path):
    source = write_dataset(tmp_path, scores=False)
    with pytest.raises(ConfigError):
        select(source, source, SelectConfig(budget=2), embedder=GroupEmbedder())
    with pytest.raises(ConfigError):
        select(tmp_path, tmp_path / "inside.jsonl", SelectConfig(budget=2), embedder=GroupEmbedder())
    assert selection_path(tmp_path / "best.jsonl.gz").name == "best.selection.json"


def test_bad_settings_are_one_error():
    with pytest.raises(ConfigError, match="--strategy must be one of"):
        SelectConfig(strategy="best").validate()
    with pytest.raises(ConfigError, match="--budget must be at least 1"):
        SelectConfig(budget=0).validate()


def test_complexity_proxy_grows_with_length_and_constraints():
    plain = complexity_proxy(Example("Name a fruit."))
    demanding = complexity_proxy(Example("Write exactly five sentences about fruit, each must include a colour, and "
                                         "explain step by step why each fruit fits."))
    assert demanding > plain + 2
