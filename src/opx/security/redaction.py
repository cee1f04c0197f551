"""Redaction of personal data and secrets in free text, with consistent keyed placeholders.

Free text (log messages, URLs, user-identity fields, trace annotations, error messages) is
scanned once, left to right, for emails, phone numbers, IP addresses, AWS access keys, secret
values (``password=…``, bearer tokens, JWTs, private keys, URL credentials) and similar. Each
finding becomes ``<KIND:xxxxxxxx>`` where ``xxxxxxxx`` is a keyed hash of the value: the same
value always gives the same placeholder and distinct values stay distinct, so an analyst can
still see that one address appears in many errors without learning the address.

Resource identifiers of the analysed system are never altered: names given as protected (service
and node names, table names, resource names) and resource ARNs pass through unchanged, even when
they look like an email or an IP address, so the root cause stays nameable. ARNs of IAM and STS
principals are identities, not resources, and are redacted like any other text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

# Used when no key is configured: placeholders stay consistent, but the hash is then guessable
# for short values (phone numbers), so deployments should set their own key.
DEFAULT_KEY = b"opx-redaction-v1"
DIGEST_CHARS = 8

# X-Ray names a node "<name>_<type>"; the bare name also appears in text and is protected too.
_XRAY_TYPE_SUFFIX = re.compile(
    r"^(?P<name>.+)_(?P<type>(?:[A-Za-z0-9]+::)+[A-Za-z0-9]+|remote|client)$"
)
# A protected name only counts as a whole token: not glued to a longer word, address or key.
_BEFORE = r"(?<![\w@.+/-])"
_AFTER = r"(?![\w@])"
# A service principal (e.g. a deployment pipeline) is not personal data and helps analysis.
_SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9.-]+\.amazonaws\.com$")
_PRINCIPAL_ARN = re.compile(
    r"^(?P<head>arn:aws[a-z-]*:(?:iam|sts)::\d{12}:"
    r"(?:user|assumed-role/[^/]+|federated-user)(?:/[^/]+)*?)/(?P<who>[^/]+)$"
)


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: str
    # When the pattern has a group named ``v``, only that part is replaced (keep ``password=``).
    partial: bool = False


_SECRET_KEYS = (
    r"password|passwd|pwd|passphrase|secret|client[_-]?secret|secret[_-]?key|"
    r"aws[_-]?secret[_-]?access[_-]?key|access[_-]?token|refresh[_-]?token|id[_-]?token|"
    r"session[_-]?token|auth[_-]?token|token|api[_-]?key|apikey|x-api-key|"
    r"authorization|credentials?|private[_-]?key"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_HEX = r"[0-9A-Fa-f]{1,4}"

# Order matters only between rules that can start at the same character.
_RULES: tuple[_Rule, ...] = (
    _Rule(
        "PRIVATE_KEY",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    ),
    _Rule("SECRET", r"(?<=://)(?P<v>[^/\s:@]+:[^/\s@]+)(?=@)", partial=True),
    _Rule("JWT", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+"),
    _Rule(
        "SECRET",
        rf"(?i:\b(?:{_SECRET_KEYS})\b)[\"']?\s*[:=]\s*[\"']?"
        r"(?P<v>(?i:bearer\s+|basic\s+)?[^\s\"'&,;}]+)",
        partial=True,
    ),
    _Rule("SECRET", r"(?i:\bbearer\s+)(?P<v>[A-Za-z0-9\-._~+/]{8,}=*)", partial=True),
    _Rule("AWS_KEY", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    _Rule(
        "SECRET",
        r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])"
        r"(?=[A-Za-z0-9/+]*[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
    ),
    _Rule("EMAIL", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    _Rule("IP", rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\w)(?!\.\d)"),
    _Rule("IP", rf"(?<![\w:])(?:{_HEX}:){{7}}{_HEX}(?![\w:])"),
    _Rule("IP", rf"(?<![\w:])(?:{_HEX}:){{1,6}}:(?:{_HEX}(?::{_HEX}){{0,5}})?(?![\w:])"),
    _Rule("IP", rf"(?<![\w:])::(?:{_HEX}:){{0,5}}{_HEX}(?![\w:])"),
    _Rule("PHONE", r"(?<![\w+])\+[1-9]\d{7,14}(?!\w)"),
    _Rule(
        "PHONE",
        r"(?<![\w+/.:-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
        r"(?![\w-])",
    ),
)
# Resource ARNs (any service but the identity ones) are kept whole.
_RESOURCE_ARN = r"\barn:aws[a-z-]*:(?!iam:|sts:)[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:[^\s\"'<>,;]+"


def protected_forms(name: str) -> set[str]:
    """The forms of a resource name that text may use: the name itself and, for an X-Ray node
    name ``<name>_<type>``, the bare ``<name>``."""
    forms = {name} if name else set()
    match = _XRAY_TYPE_SUFFIX.match(name)
    if match is not None:
        forms.add(match.group("name"))
    return forms


class Redactor:
    """Replaces personal data and secrets in text with keyed placeholders; immutable."""

    def __init__(self, key: bytes = DEFAULT_KEY, protected: Iterable[str] = ()) -> None:
        if not key:
            raise ValueError("the redaction key must not be empty")
        self._key = key
        forms: set[str] = set()
        for name in protected:
            forms |= protected_forms(name)
        self._protected = frozenset(forms)

    @property
    def protected(self) -> frozenset[str]:
        return self._protected

    def protecting(self, names: Iterable[str]) -> Redactor:
        """A redactor with the same key that also protects ``names``."""
        return Redactor(self._key, (*self._protected, *names))

    def placeholder(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()
        return f"<{kind}:{digest[:DIGEST_CHARS]}>"

    def text(self, value: str) -> str:
        """``value`` with every finding replaced; protected names and resource ARNs kept."""
        if not value:
            return value
        return self._scanner.sub(self._replace, value)

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def identity(self, value: str) -> str:
        """A user-identity field (a user name or a principal ARN): the person's name is replaced,
        role names, account ids and service principals are kept."""
        if not value or _SERVICE_PRINCIPAL.match(value):
            return value
        match = _PRINCIPAL_ARN.match(value)
        if match is not None:
            who = match.group("who")
            return f"{match.group('head')}/{self._identity_part(who)}"
        if value.startswith("arn:") or value in self._protected:
            return self.text(value)
        return self._identity_part(value)

    def _identity_part(self, who: str) -> str:
        redacted = self.text(who)
        return redacted if redacted != who else self.placeholder("USER", who)

    @cached_property
    def _scanner(self) -> re.Pattern[str]:
        parts = [f"(?P<keep>{_RESOURCE_ARN})"]
        if self._protected:
            names = "|".join(
                re.escape(n) for n in sorted(self._protected, key=lambda n: (-len(n), n))
            )
            parts.append(f"(?P<name>{_BEFORE}(?:{names}){_AFTER})")
        for index, rule in enumerate(_RULES):
            body = rule.pattern.replace("(?P<v>", f"(?P<v{index}>")
            parts.append(f"(?P<r{index}>{body})")
        return re.compile("|".join(parts))

    def _replace(self, match: re.Match[str]) -> str:
        if match.group("keep") is not None or (
            "name" in match.re.groupindex and match.group("name") is not None
        ):
            return match.group(0)
        for index, rule in enumerate(_RULES):
            if match.group(f"r{index}") is None:
                continue
            if not rule.partial:
                return self.placeholder(rule.kind, match.group(0))
            start, end = match.span(f"v{index}")
            whole_start = match.start()
            text = match.group(0)
            secret = text[start - whole_start : end - whole_start]
            return (
                text[: start - whole_start]
                + self.placeholder(rule.kind, secret)
                + text[end - whole_start :]
            )
        return match.group(0)
