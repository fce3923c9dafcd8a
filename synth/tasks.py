"""A task: one instruction with example instances, from a seed file or made by the teacher."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Task:
    id: str
    instruction: str
    instances: list[dict[str, str]] = field(default_factory=list)
    is_classification: bool | None = None
    kind: str | None = None
    origin: str = "seed"            # "seed", "machine", "query" (explanation mode) or "magpie"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "Task":
        return cls(
            id=row["id"],
            instruction=row["instruction"],
            instances=list(row.get("instances") or []),
            is_classification=row.get("is_classification"),
            kind=row.get("kind"),
            origin=row.get("origin", "seed"),
        )


def content_id(prefix: str, *parts: str) -> str:
    """A stable id from content, so a resumed run gives the same item the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
    return f"{prefix}-{digest}"
