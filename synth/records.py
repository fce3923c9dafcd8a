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


@cache
def _fast_check() -> Any:
    """The same schema compiled to Python by fastjsonschema: about 50 times faster on a valid record, which every
    record synth writes should be. It only says "valid" early; every verdict of "invalid", and every message, is
    jsonschema's. The schema's keywords are all draft-07's, which fastjsonschema compiles."""
    import fastjsonschema

    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    return fastjsonschema.compile({**schema, "$schema": "http://json-schema.org/draft-07/schema#"})


def schema_errors(record: dict[str, Any]) -> list[str]:
    try:
        _fast_check()(record)
        return []
    except Exception:  # fastjsonschema found a fault (or could not tell): jsonschema judges it and words it
        pass
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
