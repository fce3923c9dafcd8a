"""--max-cost as a hard cap: spending is reserved before a request is sent and settled after.

With a ledger file (the run folder's spend.jsonl) both steps are written down, so after a kill the
resumed run counts every settled cost plus the reservation of every request that was in flight. A settled row also
carries the request's tokens and attempts and who asked (the teacher or the novelty verifier), so the run's usage
totals are exact across any number of kills: they are sums over the ledger, not over a periodic manifest.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import BudgetExceeded, ConfigError
from ..files import JsonlAppender, fields_problem, read_complete_lines


MESSAGE_FRAMING = 8      # tokens a chat template adds around each message, at most, in the templates we know


def prompt_tokens_bound(model: str, messages: list[dict[str, Any]]) -> int:
    """An upper bound on a prompt's tokens that holds for every script: the model's own tokenizer where litellm
    has it (OpenAI's models), else the UTF-8 byte count, since no byte-level tokenizer makes more tokens than bytes
    (a character average would undercount Chinese or Japanese text threefold). Plus each message's framing."""
    import litellm

    framing = MESSAGE_FRAMING * (len(messages) + 1)
    name = model.split("/", 1)[1] if "/" in model else model          # openai/..., anthropic/...
    if name in litellm.model_cost and litellm.model_cost[name].get("litellm_provider") == "openai":
        try:
            return int(litellm.token_counter(model=name, messages=messages)) + framing
        except Exception:  # a tokenizer that cannot load offline: the byte bound still holds
            pass
    text_bytes = sum(len(str(m.get("content") or "").encode("utf-8", "surrogatepass")) for m in messages)
    return text_bytes + framing


def batch_discount(model: str, given: float) -> float:
    """The share of the online price a batch job saves: litellm's batch prices for the model where it has them,
    else `given` (--batch-discount)."""
    import litellm

    name = model.split("/", 1)[1] if "/" in model else model          # openai/..., anthropic/...
    entry = litellm.model_cost.get(name) or litellm.model_cost.get(model) or {}
    online, batch = entry.get("input_cost_per_token"), entry.get("input_cost_per_token_batches")
    if online and batch:
        return max(0.0, min(1.0, 1 - batch / online))
    return given


@dataclass(frozen=True)
class Prices:
    """What a model's tokens cost: given prices (USD per million tokens) win over litellm's packaged map."""

    model: str
    input_per_m: float | None = None
    output_per_m: float | None = None

    @property
    def given(self) -> bool:
        return self.input_per_m is not None or self.output_per_m is not None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for these tokens, or None when neither the flags nor litellm know a price."""
        if self.given:
            return (prompt_tokens * (self.input_per_m or 0.0) + completion_tokens * (self.output_per_m or 0.0)) / 1e6
        if not self.litellm_knows:
            return None
        import litellm

        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=self.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        except Exception:  # litellm has no price for self-hosted or unknown models
            return None
        return float(prompt_cost + completion_cost)

    @property
    def known(self) -> bool:
        return self.given or bool(self.cost(1_000_000, 1_000_000))

    @cached_property
    def litellm_knows(self) -> bool:
        """Whether litellm's map prices the model, asked once: for a self-hosted model the failed lookup costs more
        CPU than the rest of a request's handling, and it would be paid on every request."""
        import litellm

        try:
            litellm.cost_per_token(model=self.model, prompt_tokens=1, completion_tokens=1)
        except Exception:  # litellm has no price for self-hosted or unknown models
            return False
        return True

    def require(self) -> None:
        """--max-cost cannot cap what it cannot price: a one-line error instead of a cap that does nothing."""
        if not self.known:
            raise ConfigError(f"--max-cost needs a price for {self.model!r} and litellm has none: give "
                              "--input-cost and --output-cost (USD per million tokens)")


@dataclass
class Usage:
    """The one usage counter: a teacher's running totals in a session, and the spend ledger's settled totals per
    purpose ("teacher", "verifier", "judge") over every session of a run."""

    requests: int = 0           # requests that ended (settled in the ledger)
    calls: int = 0              # calls made, cache hits included
    cached_calls: int = 0
    attempts: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def add_settled(self, row: dict) -> None:
        """Count one settled ledger row."""
        self.requests += 1
        self.attempts += int(row.get("attempts", 0))
        self.prompt_tokens += int(row.get("prompt_tokens", 0))
        self.completion_tokens += int(row.get("completion_tokens", 0))
        self.cost += float(row.get("cost", 0.0))

    def settled(self) -> dict[str, float]:
        """What the spend ledger knows: requests ended, attempts, tokens and cost."""
        return {"requests": self.requests, "attempts": self.attempts, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": round(self.cost, 6)}

    def as_dict(self) -> dict[str, float]:
        """Everything, the live counts of calls, cache hits and failures included."""
        return {**self.settled(), "calls": self.calls, "cached_calls": self.cached_calls, "failures": self.failures}


@dataclass
class Ticket:
    number: int
    estimate: float
    session: int = 0


@dataclass
class Budget:
    cap: float | None = None
    spent: float = 0.0          # settled cost, plus unsettled reservations of an earlier, killed session
    reserved: float = 0.0       # estimates of requests in flight
    ledger: JsonlAppender | None = field(default=None, repr=False)
    session: int = 0
    unsettled: float = 0.0      # reservations of killed sessions that never settled: counted as spent, to be safe
    tallies: dict[str, Usage] = field(default_factory=dict)
    earlier: dict[tuple[int, int], float] = field(default_factory=dict)   # killed sessions' open reservations
    settled_keys: set[tuple[int, int]] = field(default_factory=set)
    _numbers: itertools.count = field(default_factory=itertools.count, repr=False)

    @classmethod
    def with_ledger(cls, cap: float | None, path: Path) -> "Budget":
        settled: dict[tuple[int, int], float] = {}
        reserved: dict[tuple[int, int], float] = {}
        tallies: dict[str, Usage] = {}
        session = 0
        for row in read_complete_lines(path, _ledger_line_problem):
            key = (row.get("session", 0), row["n"])
            session = max(session, row.get("session", 0) + 1)
            if "cost" in row:
                settled[key] = row["cost"]
                tallies.setdefault(row.get("purpose", "teacher"), Usage()).add_settled(row)
            else:
                reserved[key] = row["estimate"]
        open_reservations = {k: v for k, v in reserved.items() if k not in settled}
        unsettled = sum(open_reservations.values())
        budget = cls(cap=cap, spent=sum(settled.values()) + unsettled, ledger=JsonlAppender(path), session=session,
                     unsettled=unsettled, tallies=tallies)
        budget.earlier, budget.settled_keys = open_reservations, set(settled)
        return budget

    def reserve(self, estimate: float) -> Ticket:
        if self.cap is not None and self.spent + self.reserved + estimate > self.cap:
            raise BudgetExceeded(
                f"--max-cost {self.cap:.4f} USD reached ({self.spent:.4f} spent); "
                "raise --max-cost and run again with --resume to go on"
            )
        ticket = Ticket(next(self._numbers), estimate, self.session)
        self.reserved += estimate
        if self.ledger is not None and estimate > 0:
            self.ledger.append({"session": self.session, "n": ticket.number, "estimate": estimate})
        return ticket

    def settle(self, ticket: Ticket, actual: float, *, purpose: str = "teacher", attempts: int = 0,
               prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """Book what a request cost (every reply the server billed) and what it used, once it has ended."""
        self.reserved = max(0.0, self.reserved - ticket.estimate)
        self.spent += actual
        row = {"session": self.session, "n": ticket.number, "cost": actual, "purpose": purpose, "attempts": attempts,
               "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        self.tallies.setdefault(purpose, Usage()).add_settled(row)
        if self.ledger is not None:
            self.ledger.append(row)

    def settle_earlier(self, session: int, number: int, actual: float, *, purpose: str = "teacher", attempts: int = 0,
                       prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """Book the cost of a request a killed session reserved and never settled (a batch job it submitted, whose
        answers a resumed session collected): its reservation stops counting, its real cost counts instead."""
        if (session, number) in self.settled_keys:
            return                                      # settled already: nothing is booked twice
        self.settled_keys.add((session, number))
        estimate = self.earlier.pop((session, number), 0.0)
        self.unsettled = max(0.0, self.unsettled - estimate)
        self.spent += actual - estimate
        row = {"session": session, "n": number, "cost": actual, "purpose": purpose, "attempts": attempts,
               "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        self.tallies.setdefault(purpose, Usage()).add_settled(row)
        if self.ledger is not None:
            self.ledger.append(row)

    def tally(self, purpose: str) -> Usage:
        return self.tallies.get(purpose, Usage())

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()


def _ledger_line_problem(row: dict) -> str | None:
    """What is wrong with a spend ledger line: a reservation (n, estimate) or a settlement (n, cost, tokens...)."""
    kinds: dict = {"n": int, "session": int}
    if "cost" in row:
        kinds.update(cost=(int, float), attempts=int, prompt_tokens=int, completion_tokens=int)
    else:
        kinds["estimate"] = (int, float)
    return fields_problem(row, **{k: v for k, v in kinds.items() if k in row or k in ("n", "cost", "estimate")})
