"""Keep secrets out of everything drills writes: journals, the revert ledger, reports, logs.

Secrets reach drills two ways. Through the environment (a PagerDuty routing key, a webhook token,
``DRILLS_*_TOKEN``): their *values* are known, and are replaced wherever they appear (with their base64
forms, as ``kubectl get secret -o yaml`` prints them). And typed or pasted by people into comms, notes and
root causes: a Slack token, a GitHub token, an AWS key pair, a JWT, a PEM private key, an
``Authorization: Basic`` header. Those are not known in advance, so the scanner here knows their *shapes*.

Every writer scrubs (the journal writer every string of every event, the ledger its free text), and every
report renderer scrubs again with :func:`scrub` (a journal written by another tool, or by an older drills,
was never scrubbed by us).

Shapes known (each tested in tests/test_redact.py with a canary): Slack ``xox[abposr]-`` tokens, ``xapp-``
tokens and incoming-webhook URLs; GitHub ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` and ``github_pat_``
tokens; GitLab ``glpat-``; AWS access key ids (``AKIA``/``ASIA``...) and the secret key after
``aws_secret_access_key``; Google API keys; Stripe ``sk_live_``; npm ``npm_``; JWTs; PEM private-key blocks
(multi-line, and a block cut before its END line is scrubbed to the end of the text); ``Authorization:
Basic/Bearer/Token ...``; PagerDuty's ``Token token=...``; assignments to secret-named keys
(``password=``, ``api_key: ``, ``routing_key``, ``--token X``, ``"client_secret": "..."``); the password of
a URL (``scheme://user:password@host``).

Deliberately *not* scrubbed: SHA-256 image digests, git SHAs, UUIDs and drills' own 32-hex event ids, image
tags, timestamps, kubectl commands. They are long and random-looking but public, and they are the evidence
a postmortem needs ("the pod ran sha256:9f86..."). That is why there is no entropy detector: it cannot tell
a digest from a key, and it blanks out the evidence.

Why not detect-secrets (1.5, the maintained scanner)? Tried on this project's canaries (numbers in the
commit and the lead's report): it is a *detector* for source files, not a redactor. Its plugins report the
matched group rather than the secret's span (``ghp`` for a whole GitHub token, a JWT without its signature),
they work one line at a time (a PEM key's body lines are not found, only its BEGIN line), it missed
``Authorization: Basic``, ``password=...`` in prose and ``aws_secret_access_key = ...``, and it costs
0.27 ms a line with only the relevant plugins (1.9 ms with its defaults), against a few microseconds here.
So: one compiled alternation of well-known shapes, linear on adversarial input (bounded repeats).

Pure: callers pass the environment's secrets in (:func:`secrets_from_env`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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

# Shapes that are secret wherever they appear. Each has one group named ``s``: the part replaced; the rest of
# the match (a label such as ``password=``) is kept, so a reader still sees what was there. Repeats are
# bounded: an unbounded prefix before a backtracking point makes the scan quadratic on long words.
_KEYWORDS = (
    r"(?:aws[_-]?)?secret[_-]?access[_-]?key|client[_-]?secret|secret[_-]?key|secret"
    r"|api[_-]?key|apikey|api[_-]?token|access[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token"
    r"|private[_-]?key|routing[_-]?key|integration[_-]?key|service[_-]?key|signing[_-]?key"
    r"|token|password|passwd|passphrase|pwd"
)
_KEYWORD_TRIGGERS = ("secret", "key", "token", "passw", "pwd")


@dataclass(frozen=True)
class _Shape:
    """One secret shape: a pattern whose group ``s`` is the secret, tried only if a trigger occurs."""

    triggers: frozenset[str]  # lower-case literals; the text (lower-cased) must hold one of them
    pattern: re.Pattern[str]


def _shape(triggers: tuple[str, ...], pattern: str, *, ignore_case: bool = False) -> _Shape:
    flags = (re.IGNORECASE if ignore_case else 0) | re.DOTALL
    return _Shape(frozenset(triggers), re.compile(pattern, flags))


# Vendor prefixes are matched case-sensitively (an ``AKIA`` key id is upper case, a ``ghp_`` token lower):
# fewer false positives. Words people type (Authorization, password) in any case.
_SHAPES: tuple[_Shape, ...] = (
    # PEM private keys: the whole block, BEGIN to END; a block cut short is scrubbed to the end.
    _shape(
        ("private key",),
        r"(?P<s>-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----|.*\Z))",
    ),
    # Authorization headers (Basic, Bearer, Token, Digest...), and bare "Bearer x" / PagerDuty's "Token token=x".
    _shape(
        ("authorization",),
        r"\bauthorization[\"']?\s{0,5}[:=]\s{0,5}[\"']?"
        r"(?:(?:basic|bearer|token|digest|negotiate|ntlm|apikey)\s{1,5})?(?:token=)?"
        r"(?!(?:basic|bearer|token|digest|negotiate|ntlm|apikey)\s)(?P<s>[A-Za-z0-9._~+/-]{6,}={0,2})",
        ignore_case=True,
    ),
    _shape(
        ("bearer", "basic", "token"),
        r"\b(?:bearer\s{1,5}|basic\s{1,5}(?=[A-Za-z0-9+/]{8,}={0,2}(?![A-Za-z0-9+/=]))|token\s{1,5}token=)"
        r"(?P<s>[A-Za-z0-9._~+/-]{8,}={0,2})",
        ignore_case=True,
    ),
    # Vendor tokens with a fixed prefix.
    _shape(("xox",), r"(?<![A-Za-z0-9])(?P<s>xox[abposr]-[A-Za-z0-9-]{10,250})"),
    _shape(("xapp-",), r"(?<![A-Za-z0-9])(?P<s>xapp-[0-9]-[A-Za-z0-9-]{10,250})"),
    _shape(
        ("hooks.slack.com",),
        r"(?P<s>hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{8,250})",
        ignore_case=True,
    ),
    _shape(("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"(?<![A-Za-z0-9])(?P<s>gh[pousr]_[A-Za-z0-9]{30,250})"),
    _shape(("github_pat_",), r"(?<![A-Za-z0-9])(?P<s>github_pat_[A-Za-z0-9_]{22,250})"),
    _shape(("glpat-",), r"(?<![A-Za-z0-9])(?P<s>glpat-[A-Za-z0-9_-]{20,250})"),
    _shape(
        ("akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "anpa", "anva", "aipa"),
        r"(?<![A-Za-z0-9])(?P<s>(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16})(?![0-9A-Za-z])",
    ),
    _shape(("aiza",), r"(?<![A-Za-z0-9])(?P<s>AIza[0-9A-Za-z_-]{35})"),
    _shape(("k_live_",), r"(?<![A-Za-z0-9])(?P<s>[sr]k_live_[0-9A-Za-z]{16,250})"),
    _shape(("npm_",), r"(?<![A-Za-z0-9])(?P<s>npm_[A-Za-z0-9]{36})"),
    # JSON Web Tokens: header and payload are base64url JSON objects, so both start with "eyJ".
    _shape(
        ("eyj",),
        r"(?<![A-Za-z0-9_-])(?P<s>eyJ[A-Za-z0-9_-]{5,4000}\.eyJ[A-Za-z0-9_-]{5,8000}\.[A-Za-z0-9_-]{0,2000})",
    ),
    # Assignments to secret-named keys: password=x, api_key: "x", "client_secret": "x", --token x.
    _shape(
        _KEYWORD_TRIGGERS,
        r"(?<![A-Za-z0-9])(?:" + _KEYWORDS + r")[\"']?\s{0,5}(?:[:=]|=>)\s{0,5}[\"']?"
        r"(?P<s>(?!\[redacted\])[^\s\"',;&}<>]{4,500})",
        ignore_case=True,
    ),
    _shape(
        _KEYWORD_TRIGGERS,
        r"(?<![A-Za-z0-9-])--(?:" + _KEYWORDS + r")(?:=|\s{1,5})[\"']?"
        r"(?P<s>(?!\[redacted\])[^\s\"',;&}<>-][^\s\"',;&}<>]{3,500})",
        ignore_case=True,
    ),
    # The password of a URL: scheme://user:password@host.
    _shape(
        ("://",),
        r"\b[a-z][a-z0-9+.-]{0,31}://[^/\s:@]{1,256}:(?P<s>[^/\s@]{1,256})(?=@)",
        ignore_case=True,
    ),
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
        return scrub_shapes(text)

    def data(self, value: Any) -> Any:
        """Scrub every string (keys included) of JSON-like data: dicts, lists, strings, numbers."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _keep_label(m: re.Match[str]) -> str:
    start, end = m.span("s")
    if m.string[start:end] == REDACTED:
        return m.group(0)
    return m.string[m.start() : start] + REDACTED + m.string[end : m.end()]


_ALL_TRIGGERS = tuple(sorted({t for shape in _SHAPES for t in shape.triggers}))


def scrub_shapes(text: str) -> str:
    """``text`` with every secret-*shaped* token replaced by ``[redacted]`` (no known values needed)."""
    # Looking for a few dozen literals is far cheaper than running the patterns, and most text (an actor,
    # a reason, a kubectl command) holds none: then nothing else runs. Reports scrub every string of
    # every event, so this is the hot path of a big journal's report.
    lowered = text.lower()
    present = [t for t in _ALL_TRIGGERS if t in lowered]
    if not present:
        return text
    for shape in _SHAPES:
        if not shape.triggers.isdisjoint(present):
            text = shape.pattern.sub(_keep_label, text)
    return text


@lru_cache(maxsize=16)
def _cached(secrets: frozenset[str]) -> Redactor:
    return Redactor(secrets)


def redactor_for(secrets: Iterable[str]) -> Redactor:
    """A (cached) redactor for this set of secrets; cheap to call on every write."""
    return _cached(frozenset(secrets))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value and secret-shaped token replaced by ``[redacted]``."""
    return redactor_for(secrets)(text)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """The one call for renderers and writers: ``text`` with secret values and shapes replaced.

    ``secrets`` are the known values (``secrets_from_env(os.environ)`` at the caller, which may read the
    environment; this module may not). Idempotent: scrubbing scrubbed text changes nothing.
    """
    return redactor_for(secrets)(text)


def scrub_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """:func:`scrub` applied to every string (keys included) of JSON-like data."""
    return redactor_for(secrets).data(value)


__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Redactor",
    "is_secret_name",
    "redact",
    "redactor_for",
    "scrub",
    "scrub_data",
    "scrub_shapes",
    "secrets_from_env",
]
