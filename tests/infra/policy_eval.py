"""A small IAM policy evaluator for identity policies: explicit Deny wins, then any Allow, else
the implicit deny. Action and resource patterns use IAM's wildcards (``*`` any run of
characters, ``?`` one); actions match without regard to case; NotAction and NotResource match
everything their list does not. Conditions are read conservatively for the proofs made with it:
an Allow with a condition counts as allowing, a Deny with a condition as not denying."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

Statement = Mapping[str, Any]


@cache
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    flags = (re.IGNORECASE if ignore_case else 0) | re.DOTALL
    return re.compile(f"^{body}$", flags)


def matches(glob: str, value: str, *, ignore_case: bool = False) -> bool:
    return bool(_pattern(glob, ignore_case).match(value))


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _action_in(statement: Statement, action: str) -> bool:
    if "NotAction" in statement:
        return not any(matches(p, action, ignore_case=True) for p in _list(statement["NotAction"]))
    return any(matches(p, action, ignore_case=True) for p in _list(statement.get("Action")))


def _resource_in(statement: Statement, resource: str) -> bool:
    if "NotResource" in statement:
        return not any(matches(p, resource) for p in _list(statement["NotResource"]))
    return any(matches(p, resource) for p in _list(statement.get("Resource")))


def applies(statement: Statement, action: str, resource: str) -> bool:
    return _action_in(statement, action) and _resource_in(statement, resource)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    denied_explicitly: bool


def evaluate(statements: Iterable[Statement], action: str, resource: str) -> Decision:
    allow = deny = False
    for statement in statements:
        if not applies(statement, action, resource):
            continue
        if statement["Effect"] == "Deny" and not statement.get("Condition"):
            deny = True
        elif statement["Effect"] == "Allow":
            allow = True
    return Decision(allow and not deny, deny)


def allowed(statements: Iterable[Statement], action: str, resource: str) -> bool:
    return evaluate(list(statements), action, resource).allowed
