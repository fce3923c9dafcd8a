"""Ways of making new tasks, each a small, pure component the pipeline drives.

A method turns a proposal number into a `Proposal` (what to ask; `None` while it must wait for tasks in flight,
`DONE` when it has nothing more to ask), renders a proposal as the request to send (chat messages, or a raw prompt for
a completion endpoint), and parses the reply into candidate tasks, each with its lineage, or into a failure reason.
What happens next is shared by every method and not copied: the filters, the novelty gate, classification,
instances, the Orca answer, the record, resume, the budget and the report.

    self-instruct   Self-Instruct's bootstrap: seed and machine tasks shown, new ones asked for (optionally persona-led)
    evol            Evol-Instruct: each round mutates the last round's tasks, in depth or in breadth
    magpie          Magpie: an aligned model writes user queries itself, from its chat template's user prefix alone
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ...tasks import Task

DONE = "done"


@dataclass
class Proposal:
    """One request a method makes: its number, and whatever the method needs to render it again after a crash
    (the examples shown, a persona, a parent task and its mutation, a round)."""

    number: int
    method: str
    examples: list[str] = field(default_factory=list)     # task ids shown (self-instruct)
    persona_id: str | None = None
    parent_id: str | None = None                           # the task mutated (evol)
    mutation: str | None = None
    round: int | None = None

    def to_row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}

    @classmethod
    def from_row(cls, row: dict[str, Any], number: int) -> "Proposal":
        """A proposal written by this version, or by an older one (a bootstrap's `pool_ids`)."""
        fields = row.get("proposal") or {"number": number, "method": "self-instruct",
                                         "examples": list(row.get("pool_ids") or [])}
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


@dataclass
class Candidate:
    text: str
    lineage: dict[str, Any] = field(default_factory=dict)
    persona_id: str | None = None
    answer_directly: bool = False       # a full user query (magpie): answered as it is, no instances made


@dataclass
class Request:
    messages: list[dict[str, str]] | None = None           # chat
    prompt: str | None = None                              # a raw completion (magpie)
    stop: list[str] | None = None
    seed: int | None = None                                # a sampling seed of its own (magpie)


class Pool:
    """What a method may look at: the seeds, the accepted machine tasks, and which tasks got records."""

    def __init__(self, seeds: list[Task], machine: list[Task]):
        self.seeds, self.machine = seeds, machine
        self.recorded: set[str] = set()
        self.finished: set[str] = set()
        self.lineage: dict[str, dict[str, Any]] = {}

    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.seeds + self.machine}


class Method(Protocol):
    name: str
    stage: str

    def propose(self, number: int, pool: Pool) -> Proposal | None | str: ...

    def request(self, proposal: Proposal, pool: Pool) -> Request: ...

    def parse(self, proposal: Proposal, text: str) -> list[Candidate] | str: ...

    def template_names(self) -> tuple[str, ...]: ...
