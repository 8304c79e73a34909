"""Which rule a validation problem broke, and which field it is about, for the debugger.

:func:`~logbridge.collector.validate.validate_message` says what is wrong in words; the
debugger also names the rule (to group and explain problems) and the top-level field (to
highlight it in the message). Both are read from the words, so the validator stays the one
place that decides what is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Problem", "explain"]


@dataclass(frozen=True)
class Problem:
    """One validation problem: the rule it broke, the field it is about, and the words."""

    rule: str
    field: str | None
    message: str

    def as_json(self) -> dict[str, str | None]:
        """The problem as a JSON object."""
        return {"rule": self.rule, "field": self.field, "message": self.message}


# (pattern, rule, group naming the field or None); the first match wins.
_RULES: Final[tuple[tuple[re.Pattern[str], str, int | None], ...]] = (
    (re.compile(r"missing (type)$"), "type-required", 1),
    (re.compile(r"unknown (type) "), "known-type", 1),
    (re.compile(r"missing userId or anonymousId$"), "user-or-anonymous-id", None),
    (re.compile(r"missing (\w+)$"), "required-field", 1),
    (re.compile(r"(\w+) must be a non-empty string"), "non-empty-string", 1),
    (re.compile(r"(timestamp) must be ISO-8601"), "iso8601-timestamp", 1),
    (re.compile(r"(\w+) must be an object"), "object-field", 1),
    (re.compile(r"(\w+) must be a string"), "string-field", 1),
    (re.compile(r"(\w+) is not a spec field"), "camel-case-field", 1),
    (re.compile(r"message is \d+ bytes, over"), "size-limit", None),
    (re.compile(r"message is not serialisable"), "json-value", None),
    (re.compile(r"message must be a JSON object"), "message-object", None),
)


def explain(problem: str) -> Problem:
    """The rule and field behind one problem of ``validate_message`` (rule ``spec`` if unknown)."""
    for pattern, rule, group in _RULES:
        match = pattern.match(problem)
        if match is not None:
            return Problem(rule, match.group(group) if group else None, problem)
    return Problem("spec", None, problem)
