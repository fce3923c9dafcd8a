"""Records: building them with provenance, and checking each against record.schema.json before it is written."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import cache
from typing import Any

import jsonschema

from .errors import SchemaError
from .resources import schema_path

# 2: provenance gains method, lineage and persona_id, and the record an optional quality section. Version-1 records
# (without them) still load and validate.
SCHEMA_VERSION = 2


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(record: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<record>'}: {e.message}" for e in _validator().iter_errors(record)]


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    errors = schema_errors(record)
    if errors:
        raise SchemaError("record fails the schema: " + "; ".join(errors[:3]))
    return record


def user_message(instruction: str, input_text: str) -> str:
    """The user turn the teacher answers, and the student later sees: instruction, then input if any."""
    return f"{instruction}\n\n{input_text}" if input_text.strip() else instruction


def chat_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": record["system_message"]["text"]},
        {"role": "user", "content": user_message(record["task"]["instruction"], record["instance"]["input"])},
        {"role": "assistant", "content": record["response"]},
    ]
