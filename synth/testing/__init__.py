"""Test doubles for synth (e.g. a scripted OpenAI-compatible teacher server)."""

from synth.testing.scripts import (
    FAULT_KINDS,
    Attempt,
    Fault,
    Reply,
    Script,
    echo_script,
    http_date,
    request_key,
    scripted,
)
from synth.testing.server import FakeTeacherServer

from synth.testing.batches import BatchPlan
from synth.testing.faults import (
    CUT_TEXT,
    INJECTIONS,
    LENGTH_TEXT,
    REJECTED_FINISH,
    OutageScript,
    default_faults,
    expected_rejections,
    explain_reply,
    fault_mix,
)

__all__ = [
    "BatchPlan",
    "CUT_TEXT",
    "LENGTH_TEXT",
    "REJECTED_FINISH",
    "OutageScript",
    "INJECTIONS",
    "default_faults",
    "expected_rejections",
    "explain_reply",
    "fault_mix",
    "Attempt",
    "FAULT_KINDS",
    "FakeTeacherServer",
    "Fault",
    "Reply",
    "Script",
    "echo_script",
    "http_date",
    "request_key",
    "scripted",
]
