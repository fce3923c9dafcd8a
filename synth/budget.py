"""--max-cost as a hard cap: spending is reserved before a request is sent and settled after."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BudgetExceeded


@dataclass
class Budget:
    cap: float | None = None
    spent: float = 0.0          # settled cost, including earlier sessions of a resumed run
    reserved: float = 0.0       # estimates of requests in flight

    def reserve(self, estimate: float) -> float:
        if self.cap is not None and self.spent + self.reserved + estimate > self.cap:
            raise BudgetExceeded(
                f"--max-cost {self.cap:.4f} USD reached ({self.spent:.4f} spent); "
                "raise --max-cost and run again with --resume to go on"
            )
        self.reserved += estimate
        return estimate

    def settle(self, estimate: float, actual: float) -> None:
        self.reserved = max(0.0, self.reserved - estimate)
        self.spent += actual

    @property
    def exhausted(self) -> bool:
        return self.cap is not None and self.spent >= self.cap
