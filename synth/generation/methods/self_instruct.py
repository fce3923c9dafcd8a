"""Self-Instruct's bootstrap (Wang et al. 2022): each prompt shows seed and machine-made tasks and asks for new ones.

With personas, each prompt draws one persona and asks for the tasks that person would bring (`bootstrap_persona`);
the persona's id goes into the provenance of every task and record it leads to.
"""

from __future__ import annotations

import random

from ...prompts import render
from ...tasks import Task
from ..parsing import parse_numbered_list
from ..personas import Persona
from . import Candidate, Pool, Proposal, Request

TEMPLATE, PERSONA_TEMPLATE = "bootstrap", "bootstrap_persona"


def sample_examples(seeds: list[Task], machine: list[Task], rng: random.Random,
                    n_seed: int, n_machine: int) -> list[Task]:
    """Self-Instruct's prompt mix: n_seed seed tasks and n_machine machine tasks; seeds fill any shortfall."""
    machine_part = rng.sample(machine, min(n_machine, len(machine)))
    seed_count = min(len(seeds), n_seed + n_machine - len(machine_part))
    examples = rng.sample(seeds, seed_count) + machine_part
    rng.shuffle(examples)
    return examples


def bootstrap_messages(examples: list[Task], num_new: int, persona: Persona | None = None) -> list[dict[str, str]]:
    listing = "\n".join(f"{i}. {task.instruction}" for i, task in enumerate(examples, 1))
    variables = dict(num_examples=len(examples), num_new=num_new, examples=listing, next_number=len(examples) + 1)
    if persona is not None:
        return [{"role": "user", "content": render(PERSONA_TEMPLATE, persona=persona.text, **variables)}]
    return [{"role": "user", "content": render(TEMPLATE, **variables)}]


class SelfInstruct:
    name, stage = "self-instruct", "bootstrap"

    def __init__(self, *, seed: int, seed_tasks: int, machine_tasks: int, new_tasks: int,
                 personas: list[Persona] | None = None):
        self.seed, self.seed_tasks, self.machine_tasks, self.new_tasks = seed, seed_tasks, machine_tasks, new_tasks
        self.personas = {p.id: p for p in personas or []}
        self._persona_order = [p.id for p in personas or []]

    def template_names(self) -> tuple[str, ...]:
        return (PERSONA_TEMPLATE,) if self.personas else (TEMPLATE,)

    def propose(self, number: int, pool: Pool) -> Proposal:
        rng = random.Random(f"{self.seed}:bootstrap:{number}")
        examples = sample_examples(pool.seeds, pool.machine, rng, self.seed_tasks, self.machine_tasks)
        persona = rng.choice(self._persona_order) if self._persona_order else None
        return Proposal(number, self.name, examples=[t.id for t in examples], persona_id=persona)

    def request(self, proposal: Proposal, pool: Pool) -> Request:
        by_id = pool.by_id()
        examples = [by_id[i] for i in proposal.examples if i in by_id]
        persona = self.personas.get(proposal.persona_id) if proposal.persona_id else None
        return Request(messages=bootstrap_messages(examples, self.new_tasks, persona))

    def parse(self, proposal: Proposal, text: str) -> list[Candidate] | str:
        items = parse_numbered_list(text)
        if not items:
            return "unparseable_list"
        lineage = {"method": self.name, "prompt_pool_ids": proposal.examples}
        return [Candidate(item, lineage, proposal.persona_id) for item in items]
