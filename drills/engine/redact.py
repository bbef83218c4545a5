"""Keep secrets out of everything drills writes: journals, reports, logs.

Secrets reach drills through the environment (a PagerDuty routing key, a webhook token, ``DRILLS_*_TOKEN``).
Rather than trusting every writer to remember which fields might hold one, the journal writer scrubs every
string of every event with a :class:`Redactor` built from the environment *values* whose names look secret,
plus a few shapes that are secret wherever they come from (``Authorization: Bearer ...``, ``token=...``,
the password of a URL). Pure: the caller passes the environment mapping in.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[redacted]"

#: Values shorter than this are not treated as secrets: "1", "true" or "prod" would blank out ordinary text.
MIN_SECRET_LENGTH = 6

# An environment variable holds a secret when one of the underscore-separated words of its name is (or ends
# with, as in APIKEY or GITHUBTOKEN) one of these.
_SECRET_WORDS = (
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "KEY",
    "ROUTING",
    "WEBHOOK",
    "CREDENTIAL",
    "CREDENTIALS",
    "AUTH",
    "PRIVATE",
    "DSN",
    "COOKIE",
)

# Shapes that are secret wherever they appear; the secret part is the last group.
_SECRET_SHAPES = re.compile(
    r"(?P<bearer>\b(?:bearer\s+|token\s+token=))(?P<v1>[A-Za-z0-9._~+/=-]{8,})"
    r"|(?P<assign>(?<![A-Za-z0-9])(?:api[_-]?key|access[_-]?key|routing[_-]?key|token|password|passwd)"
    r"[\"']?\s*[:=]\s*[\"']?)(?P<v2>[^\s\"',;&}]{6,})"
    # Bounded scheme and user: unbounded `[a-z][a-z0-9+.-]*://` backtracks quadratically on long words.
    r"|(?P<userinfo>\b[a-z][a-z0-9+.-]{0,31}://[^/\s:@]{1,256}:)(?P<v3>[^/\s@]{1,256})(?=@)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """True for ``PAGERDUTY_ROUTING_KEY``, ``DRILLS_WEBHOOK_TOKEN``, ``DB_PASSWORD``, ``GITHUBTOKEN``..."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name.upper()) if w]
    return any(w.endswith(s) for w in words for s in _SECRET_WORDS)


def secrets_from_env(env: Mapping[str, str]) -> frozenset[str]:
    """The values of the environment that must never be written down."""
    return frozenset(v for k, v in env.items() if is_secret_name(k) and len(v.strip()) >= MIN_SECRET_LENGTH)


def _variants(secret: str) -> Iterable[str]:
    # Surrounding whitespace is an accident of how the variable was set, not part of the secret.
    stripped = secret.strip()
    yield stripped
    # Kubernetes Secrets carry their values base64-encoded: `kubectl get secret -o yaml` output must not
    # leak the value either.
    raw = stripped.encode()
    yield base64.b64encode(raw).decode()
    yield base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Redactor:
    """Replaces every known secret value, and every secret-shaped token, with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {
            v for s in secrets if len(s.strip()) >= MIN_SECRET_LENGTH for v in _variants(s) if len(v) >= 6
        }
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(values, key=lambda v: (-len(v), v))
        self._known = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        return _SECRET_SHAPES.sub(_keep_prefix, text)

    def data(self, value: Any) -> Any:
        """Scrub every string (keys included) of JSON-like data: dicts, lists, strings, numbers."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _keep_prefix(m: re.Match[str]) -> str:
    for prefix, _secret in (("bearer", "v1"), ("assign", "v2"), ("userinfo", "v3")):
        if m.group(prefix) is not None:
            if m.group(_secret) == REDACTED:
                return m.group(0)
            return m.group(prefix) + REDACTED
    return m.group(0)  # pragma: no cover - the pattern always matches one alternative


@lru_cache(maxsize=16)
def _cached(secrets: frozenset[str]) -> Redactor:
    return Redactor(secrets)


def redactor_for(secrets: Iterable[str]) -> Redactor:
    """A (cached) redactor for this set of secrets; cheap to call on every write."""
    return _cached(frozenset(secrets))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value and secret-shaped token replaced by ``[redacted]``."""
    return redactor_for(secrets)(text)


__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Redactor",
    "is_secret_name",
    "redact",
    "redactor_for",
    "secrets_from_env",
]
