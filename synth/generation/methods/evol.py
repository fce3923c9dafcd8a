"""Evol-Instruct (Xu et al. 2023, WizardLM): each round mutates the tasks of the round before (the seeds, in round 1).

In depth, a task gains constraints, depth, concreteness, reasoning steps or a harder input; in breadth, a rarer task of
the same domain and difficulty is written beside it. A mutation is eliminated when it adds nothing (the novelty gate,
and its verifier, find it the same task as one in the pool: its parent is there), when it copies the mutation
prompt's own words, or when its answer fails; only tasks that got a record are evolved further. Every task keeps its
lineage: the root task, its parent, and the mutations applied, round by round.
"""

from __future__ import annotations

import random
import re
from typing import Any

from ...prompts import render, template_text
from . import DONE, Candidate, Pool, Proposal, Request

MUTATIONS = ("constraints", "deepen", "concretize", "reasoning", "complicate_input", "breadth")
_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:\*\*)?\s*(?:rewritten|new|evolved)?\s*(?:task|prompt|instruction)\s*(?:\*\*)?\s*:\s*",
                    re.I)
COPIED = 0.3          # a mutation whose 5-grams come this much from the prompt's own words copies it


class Evol:
    name, stage = "evol", "evolve"

    def __init__(self, *, seed: int, rounds: int):
        self.seed, self.rounds = seed, rounds
        self.round = 1
        self.queue: list[str] | None = None          # parents still to mutate in this round
        self.open: dict[int, int] = {}               # round -> proposals in flight
        self.started: dict[int, set[str]] = {}

    def template_names(self) -> tuple[str, ...]:
        return tuple(f"evol_{m}" for m in MUTATIONS)

    def propose(self, number: int, pool: Pool) -> Proposal | None | str:
        if self.queue is None:
            self.queue = self._parents(pool)
        if not self.queue:
            if self.open.get(self.round) or not self._round_finished(pool):
                return None                            # the round's mutations and their answers are still going
            if self.round >= self.rounds:
                return DONE
            self.round += 1
            self.queue = self._parents(pool)
            if not self.queue:
                return DONE                            # nothing of the last round survived to evolve
        parent = self.queue.pop(0)
        mutation = random.Random(f"{self.seed}:evol:{self.round}:{parent}").choice(MUTATIONS)
        self.open[self.round] = self.open.get(self.round, 0) + 1
        self.started.setdefault(self.round, set()).add(parent)
        return Proposal(number, self.name, parent_id=parent, mutation=mutation, round=self.round)

    def restore(self, proposals: list[dict[str, Any]], pool: Pool) -> None:
        """After a crash: the round reached, and the parents of that round already mutated (their proposals are
        replayed by the pipeline, not made again)."""
        rounds = [p.get("round") or 1 for p in proposals if p.get("method") == self.name]
        if not rounds:
            return
        self.round = max(rounds)
        done = {p.get("parent_id") for p in proposals if p.get("round") == self.round}
        self.started[self.round] = set(done)
        self.queue = [parent for parent in self._parents(pool) if parent not in done]

    def finished(self, proposal: Proposal) -> None:
        """The pipeline is done with a proposal (its reply parsed, its candidates judged)."""
        if proposal.round in self.open:
            self.open[proposal.round] -= 1

    def _parents(self, pool: Pool) -> list[str]:
        if self.round == 1:
            return [t.id for t in pool.seeds]
        return [t.id for t in pool.machine if pool.lineage.get(t.id, {}).get("round") == self.round - 1
                and t.id in pool.recorded]

    def _round_finished(self, pool: Pool) -> bool:
        tasks = [t.id for t in pool.machine if pool.lineage.get(t.id, {}).get("round") == self.round]
        return all(t in pool.finished for t in tasks)

    def request(self, proposal: Proposal, pool: Pool) -> Request:
        return Request(messages=[{"role": "user", "content": render(f"evol_{proposal.mutation}",
                                                                     task=self._task_text(proposal, pool))}])

    @staticmethod
    def _task_text(proposal: Proposal, pool: Pool) -> str:
        parent = pool.by_id()[proposal.parent_id]
        first = parent.instances[0]["input"] if parent.instances else ""
        return f"{parent.instruction}\n\n{first}" if first.strip() else parent.instruction

    def parse(self, proposal: Proposal, text: str) -> list[Candidate] | str:
        lines = [line for line in (text or "").strip().splitlines() if line.strip()]
        if not lines:
            return "empty_mutation"
        task = _LABEL.sub("", "\n".join(lines)).strip().strip("*").strip().strip('"').strip()
        if not task:
            return "empty_mutation"
        if copies_prompt(task, template_text(f"evol_{proposal.mutation}")):
            return "copies_mutation_prompt"
        return [Candidate(task, self._lineage(proposal))]

    def _lineage(self, proposal: Proposal) -> dict[str, Any]:
        return {"method": self.name, "parent_id": proposal.parent_id, "round": proposal.round,
                "mutation": proposal.mutation}


def full_lineage(candidate: dict[str, Any], parent: dict[str, Any] | None) -> dict[str, Any]:
    """A mutation's lineage from its parent's: the root task, and every mutation applied, round by round."""
    parent = parent or {}
    root = parent.get("root_id") or candidate["parent_id"]
    steps = list(parent.get("mutations") or []) + [{"round": candidate["round"], "mutation": candidate["mutation"],
                                                    "parent_id": candidate["parent_id"]}]
    return {**candidate, "root_id": root, "mutations": steps}


def copies_prompt(task: str, template: str, n: int = 5) -> bool:
    """Whether a mutation is mostly the mutation prompt's own wording (a model that echoed its instructions)."""
    words = re.findall(r"\w+", task.lower())
    own = set(_grams(re.findall(r"\w+", template.replace("$task", " ").lower()), n))
    grams = list(_grams(words, n))
    return bool(grams) and sum(g in own for g in grams) / len(grams) >= COPIED


def _grams(words: list[str], n: int):
    return (tuple(words[i:i + n]) for i in range(len(words) - n + 1))
