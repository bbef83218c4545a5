"""The seed's seven communication templates, prefilled with what a drill knows, and a checker for replies.

Responders practise the real messages (incident-response-framework.md lines 191-334): the text of each
template is the seed's, placeholders and all, so a drill's messages look like the real thing. ``render`` fills
the placeholders the drill can fill honestly (incident id, service, start time, incident commander, the
declared severity) and leaves the rest as ``[placeholders]`` for the person to write. ``check`` reads a
submitted message back: a required line that is missing, a placeholder left in, a severity that is not P0-P3
or an incident id that does not match the drill are each a problem naming the field.

Matching is forgiving about what people change when they type: emoji, spacing and letter case are ignored, so
"INCIDENT DETECTED - P1" matches the seed's "🚨 INCIDENT DETECTED - P[0-3]". The true severity is never
prefilled: declaring it is part of what the drill measures.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from drills.errors import UsageError
from drills.model.durations import format_duration
from drills.model.events import (
    AlertFired,
    CommsPosted,
    Detected,
    DrillStarted,
    Event,
    Resolved,
    Role,
    RoleAssigned,
    SeverityDeclared,
)

SEED = "incident-response-framework.md"

#: A placeholder as the seed writes one: ``[text]``. Markdown check boxes (``[ ]``, ``[x]``) and links
#: (``[text](url)``) are what people legitimately write, so they are not placeholders.
PLACEHOLDER = re.compile(r"\[(?![ xX]\])[^\[\]\n]+\](?!\()")


# ---- matching what people type against the seed's lines --------------------------------------------------


def _normalise(text: str) -> str:
    """Drop emoji and variation selectors, collapse spaces, strip lines: what people change when typing."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) != "So" and ch not in "\ufe0f\ufe0e\u200d")
    return "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in kept.splitlines())


def _literal(text: str) -> str:
    return r"[ \t]*".join(re.escape(part) for part in _normalise(text).split(" "))


def _compile(text: str, tokens: list[str]) -> tuple[dict[str, tuple[re.Pattern[str], str]], tuple[str, ...]]:
    """One regex per template line that holds tokens, with a named group for each token.

    A line that is only a token (the email's "What happened:" paragraph) is anchored to the line before it.
    Lines ending in ":" without tokens are section headings.
    """
    patterns: dict[str, tuple[re.Pattern[str], str]] = {}
    headings: list[str] = []
    previous = ""
    token_re = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        parts = token_re.split(stripped)
        found = token_re.findall(stripped)
        if not found:
            if stripped.endswith(":"):
                headings.append(_normalise(stripped))
            previous = stripped
            continue
        token_only = not any(_normalise(p) for p in parts)
        if token_only and not found[0].startswith("["):
            # A tag such as "#incident-[YYYYMMDD-HHMM]" is recognised wherever it is written.
            prefix = re.escape(found[0][: found[0].index("[")])
            patterns[found[0]] = (re.compile(rf"(?P<g0>{prefix}\S+)", re.IGNORECASE), "g0")
            previous = stripped
            continue
        regex = r"^[ \t]*"
        if token_only and previous:
            regex += _literal(previous) + r"[ \t]*\n(?:[ \t]*\n)*[ \t]*"
        groups: list[tuple[str, str]] = []
        for i, token in enumerate(found):
            name = f"g{i}"
            regex += _literal(parts[i]) + rf"[ \t]*(?P<{name}>.*?)[ \t]*"
            groups.append((token, name))
        regex += _literal(parts[-1]) + r"[ \t]*$"
        compiled = re.compile(regex, re.IGNORECASE | re.MULTILINE)
        for token, name in groups:
            patterns[token] = (compiled, name)
        previous = stripped
    return patterns, tuple(headings)


@dataclass(frozen=True)
class CommsField:
    """One placeholder of a template.

    ``key`` names it in a render context and in what ``check`` reports; several tokens may share a key (the
    status page names the service twice). ``token`` is the placeholder exactly as the seed writes it, with any
    literal that belongs to the value (``P[0-3]``, ``@[name]``, ``#incident-[YYYYMMDD-HHMM]``). ``value`` is a
    pattern the filled-in text must match in full, when the seed implies one.
    """

    key: str
    token: str
    required: bool = True
    value: str | None = None
    expects: str = ""


@dataclass(frozen=True)
class CommsTemplate:
    id: str
    title: str
    audience: str  # "internal" or "external"
    citation: str
    text: str
    fields: tuple[CommsField, ...]
    _line_patterns: dict[str, tuple[re.Pattern[str], str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _headings: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            if f.token not in self.text:
                raise ValueError(f"template {self.id}: token {f.token!r} is not in the text")
        patterns, headings = _compile(self.text, [f.token for f in self.fields])
        object.__setattr__(self, "_line_patterns", patterns)
        object.__setattr__(self, "_headings", headings)

    @property
    def keys(self) -> tuple[str, ...]:
        """Field keys in the order they appear, each once."""
        return tuple(dict.fromkeys(f.key for f in self.fields))

    @property
    def required_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.key for f in self.fields if f.required))

    @property
    def headings(self) -> tuple[str, ...]:
        """Section headings the message must keep ("Actions Taken:", "Next Steps:", ...)."""
        return self._headings


@dataclass(frozen=True)
class CommsProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


# ---- the seed's templates --------------------------------------------------------------------------------

_INCIDENT_ID = CommsField(
    "incident_id",
    "#incident-[YYYYMMDD-HHMM]",
    value=r"#incident-\d{8}-\d{4}",
    expects="#incident-YYYYMMDD-HHMM",
)
_IC = CommsField("ic", "@[name]", value=r"@\S.*", expects="@ and a name")
_SEVERITY_VALUE = r"P[0-3]"

TEMPLATES: dict[str, CommsTemplate] = {
    t.id: t
    for t in (
        CommsTemplate(
            id="initial_alert",
            title="Initial Alert",
            audience="internal",
            citation=f"{SEED}:195",
            text="""\
🚨 INCIDENT DETECTED - P[0-3]

Service: [service-name]
Symptom: [description of what's broken]
Impact: [% of users affected, features down]
Start Time: [timestamp]
Status: 🔍 Investigating

War Room: [Zoom/Slack link]
Incident Commander: @[name]
Status Updates: Every 15 minutes

#incident-[YYYYMMDD-HHMM]
""",
            fields=(
                CommsField("severity", "P[0-3]", value=_SEVERITY_VALUE, expects="P0, P1, P2 or P3"),
                CommsField("service", "[service-name]"),
                CommsField("symptom", "[description of what's broken]"),
                CommsField("impact", "[% of users affected, features down]"),
                CommsField("start_time", "[timestamp]"),
                CommsField("war_room", "[Zoom/Slack link]"),
                _IC,
                _INCIDENT_ID,
            ),
        ),
        CommsTemplate(
            id="status_update",
            title="Status Update",
            audience="internal",
            citation=f"{SEED}:212",
            text="""\
📊 INCIDENT UPDATE #[number] - [HH:MM]

Current Status: [🔍 Investigating | 🔧 Mitigating | ✅ Resolved | 👀 Monitoring]

Impact:
- [Current user impact]
- [Affected services/features]

Actions Taken:
- ✅ [Completed action 1]
- ✅ [Completed action 2]
- 🔄 [In-progress action]

Root Cause: [Brief description or "Still investigating"]

Next Steps:
- [ ] [Planned action 1]
- [ ] [Planned action 2]

ETA to Resolution: [estimated time or "Unknown"]

Incident Commander: @[name]
#incident-[YYYYMMDD-HHMM]
""",
            fields=(
                CommsField("update_number", "[number]", value=r"\d+", expects="a number"),
                CommsField("time", "[HH:MM]", value=r"\d{1,2}:\d{2}(\s*utc)?", expects="HH:MM"),
                CommsField(
                    "status",
                    "[🔍 Investigating | 🔧 Mitigating | ✅ Resolved | 👀 Monitoring]",
                    value=r"investigating|mitigating|resolved|monitoring",
                    expects="Investigating, Mitigating, Resolved or Monitoring",
                ),
                CommsField("current_impact", "[Current user impact]", required=False),
                CommsField("affected", "[Affected services/features]", required=False),
                CommsField("completed_action", "[Completed action 1]", required=False),
                CommsField("completed_action", "[Completed action 2]", required=False),
                CommsField("in_progress_action", "[In-progress action]", required=False),
                CommsField("root_cause", '[Brief description or "Still investigating"]'),
                CommsField("next_step", "[Planned action 1]", required=False),
                CommsField("next_step", "[Planned action 2]", required=False),
                CommsField("eta", '[estimated time or "Unknown"]'),
                _IC,
                _INCIDENT_ID,
            ),
        ),
        CommsTemplate(
            id="resolution",
            title="Resolution Notification",
            audience="internal",
            citation=f"{SEED}:239",
            text="""\
✅ INCIDENT RESOLVED

Incident: [title]
Duration: [total time from detection to resolution]
Impact: [summary of impact]

Root Cause: [brief technical explanation]

Resolution: [what fixed it]

Next Steps:
- Continued monitoring for [timeframe]
- Postmortem scheduled for [date/time]
- Follow-up actions: [link to action items]

Thank you to the response team: @[names]

Postmortem: [link when available]
#incident-[YYYYMMDD-HHMM]
""",
            fields=(
                CommsField("title", "[title]"),
                CommsField("duration", "[total time from detection to resolution]"),
                CommsField("impact", "[summary of impact]"),
                CommsField("root_cause", "[brief technical explanation]"),
                CommsField("resolution", "[what fixed it]"),
                CommsField("monitoring_window", "[timeframe]"),
                CommsField("postmortem_at", "[date/time]"),
                CommsField("action_items", "[link to action items]"),
                CommsField("team", "@[names]", value=r"@\S.*", expects="@ and names"),
                CommsField("postmortem_link", "[link when available]", required=False),
                _INCIDENT_ID,
            ),
        ),
        CommsTemplate(
            id="statuspage_investigating",
            title="Status Page Update - Investigating",
            audience="external",
            citation=f"{SEED}:264",
            text="""\
Investigating - [Service Name]

We are investigating reports of [description of issue].
Users may experience [specific impact].

We will provide updates as more information becomes available.

Posted at: [timestamp]
""",
            fields=(
                CommsField("service", "[Service Name]"),
                CommsField("issue", "[description of issue]"),
                CommsField("user_impact", "[specific impact]"),
                CommsField("posted_at", "[timestamp]"),
            ),
        ),
        CommsTemplate(
            id="statuspage_identified",
            title="Status Page Update - Identified",
            audience="external",
            citation=f"{SEED}:276",
            text="""\
Identified - [Service Name]

We have identified the cause of [issue] as [brief explanation].
Our team is working on a fix.

Affected services: [list]
Estimated resolution: [timeframe or "Unknown"]

Posted at: [timestamp]
""",
            fields=(
                CommsField("service", "[Service Name]"),
                CommsField("issue", "[issue]"),
                CommsField("cause", "[brief explanation]"),
                CommsField("affected", "[list]"),
                CommsField("eta", '[timeframe or "Unknown"]'),
                CommsField("posted_at", "[timestamp]"),
            ),
        ),
        CommsTemplate(
            id="statuspage_resolved",
            title="Status Page Update - Resolved",
            audience="external",
            citation=f"{SEED}:289",
            text="""\
Resolved - [Service Name]

The issue with [service] has been resolved.
All services are operating normally.

Root cause: [brief, non-technical explanation]
Duration: [time]

We apologize for any inconvenience.

Posted at: [timestamp]
""",
            fields=(
                CommsField("service", "[Service Name]"),
                CommsField("service", "[service]"),
                CommsField("root_cause", "[brief, non-technical explanation]"),
                CommsField("duration", "[time]"),
                CommsField("posted_at", "[timestamp]"),
            ),
        ),
        CommsTemplate(
            id="customer_email",
            title="Customer Notification Email (P0)",
            audience="external",
            citation=f"{SEED}:304",
            text="""\
Subject: Service Disruption - [Date]

Dear Valued Customer,

We experienced a service disruption affecting [service/feature]
on [date] from [start time] to [end time] ([duration]).

What happened:
[Non-technical explanation of the incident]

Impact:
[Specific impact to customers]

Resolution:
[What we did to fix it]

Prevention:
We have implemented the following measures to prevent recurrence:
- [Preventive measure 1]
- [Preventive measure 2]

We sincerely apologize for any inconvenience this may have caused.
If you have any questions or concerns, please contact our support team.

Thank you for your patience and understanding.

Best regards,
[Team Name]
""",
            fields=(
                CommsField("date", "[Date]"),
                CommsField("service", "[service/feature]"),
                CommsField("date", "[date]"),
                CommsField("start_time", "[start time]"),
                CommsField("end_time", "[end time]"),
                CommsField("duration", "[duration]"),
                CommsField("what_happened", "[Non-technical explanation of the incident]"),
                CommsField("customer_impact", "[Specific impact to customers]"),
                CommsField("resolution", "[What we did to fix it]"),
                CommsField("prevention", "[Preventive measure 1]", required=False),
                CommsField("prevention", "[Preventive measure 2]", required=False),
                CommsField("team_name", "[Team Name]"),
            ),
        ),
    )
}

TEMPLATE_IDS: tuple[str, ...] = tuple(TEMPLATES)


def get_template(template: CommsTemplate | str) -> CommsTemplate:
    if isinstance(template, CommsTemplate):
        return template
    name = template.strip().lower().replace("-", "_")
    try:
        return TEMPLATES[name]
    except KeyError:
        raise UsageError(
            f"unknown communication template {template!r}", hint=f"use one of: {', '.join(TEMPLATE_IDS)}"
        ) from None


# ---- prefilling ------------------------------------------------------------------------------------------


def incident_id(start: datetime) -> str:
    """``#incident-YYYYMMDD-HHMM`` of the incident's start, in UTC (the seed's channel tag)."""
    return f"#incident-{start.astimezone(UTC):%Y%m%d-%H%M}"


def format_time(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def render(template: CommsTemplate | str, context: Mapping[str, object]) -> str:
    """The template with every field the context knows filled in; the rest stay ``[placeholders]``.

    Values may be text, datetimes (written ``YYYY-MM-DD HH:MM UTC``) or durations. ``severity`` is written
    ``P1``, ``ic`` and ``team`` without their ``@``, ``incident_id`` as :func:`incident_id` gives it.
    """
    t = get_template(template)
    text = t.text
    for f in t.fields:
        value = context.get(f.key)
        if value is None or value == "":
            continue
        filled = _text(value)
        if f.token.startswith("@") and not filled.startswith("@"):
            filled = "@" + filled
        text = text.replace(f.token, filled, 1)
    return text


def drill_context(events: Sequence[Event], now: datetime | None = None) -> dict[str, str]:
    """What the journal tells about the incident so far, as a render context.

    The start time is the first signal a responder had (alert or human detection), else the drill's start;
    the incident id is taken from the drill's start so it stays the same in every message. ``now`` (given by
    the caller: this layer reads no clock) fills "posted at" and the update's HH:MM.
    """
    ctx: dict[str, str] = {}
    started = next((e for e in events if isinstance(e, DrillStarted)), None)
    first_signal: datetime | None = None
    people: list[str] = []
    updates = 0
    resolved_at: datetime | None = None
    for e in events:
        if isinstance(e, AlertFired | Detected) and (first_signal is None or e.at < first_signal):
            first_signal = e.at
        elif isinstance(e, SeverityDeclared):
            ctx["severity"] = e.severity.value
        elif isinstance(e, RoleAssigned):
            if e.role == Role.IC:
                ctx["ic"] = e.person
            if e.person not in people:
                people.append(e.person)
        elif isinstance(e, CommsPosted) and e.template == "status_update":
            updates += 1
        elif isinstance(e, Resolved):
            resolved_at = e.at
    if started is not None:
        ctx["incident_id"] = incident_id(started.at)
        ctx["service"] = started.service
    start = first_signal or (started.at if started is not None else None)
    if start is not None:
        ctx["start_time"] = format_time(start)
        ctx["date"] = f"{start.astimezone(UTC):%Y-%m-%d}"
        if resolved_at is not None and resolved_at >= start:
            ctx["duration"] = format_duration(resolved_at - start)
            ctx["end_time"] = format_time(resolved_at)
    if people:
        ctx["team"] = " @".join(people)
    ctx["update_number"] = str(updates + 1)
    if now is not None:
        ctx["posted_at"] = format_time(now)
        ctx["time"] = f"{now.astimezone(UTC):%H:%M} UTC"
    return ctx


# ---- checking what a responder wrote ---------------------------------------------------------------------


def check(
    template: CommsTemplate | str, text: str, *, expected_incident_id: str | None = None
) -> list[CommsProblem]:
    """Every problem with a submitted message, at most one per field, in template order."""
    t = get_template(template)
    body = _normalise(text)
    problems: dict[str, CommsProblem] = {}
    # A paragraph deleted under its heading must not let the next heading pass for its text.
    headings = {h.lower() for h in t.headings}

    def report(key: str, message: str) -> None:
        problems.setdefault(key, CommsProblem(key, message))

    for f in t.fields:
        pattern, group = t._line_patterns[f.token]
        values = [(m.group(group) or "").strip() for m in pattern.finditer(body)]
        values = [v for v in values if v.lower() not in headings]
        filled = [v for v in values if v and not PLACEHOLDER.search(v)]
        good = [v for v in filled if f.value is None or re.fullmatch(f.value, v, re.IGNORECASE)]
        if good:
            wrong_incident = expected_incident_id is not None and f.key == "incident_id"
            if wrong_incident and not any(v.lower() == str(expected_incident_id).lower() for v in good):
                report(f.key, f"is {good[0]}, but this incident is {expected_incident_id}")
            continue
        if filled:
            report(f.key, f"{filled[0]!r} is not {f.expects or 'valid'}")
        elif values:
            report(f.key, f"not filled in: still {f.token}")
        elif f.required:
            report(f.key, f"line missing (the template has {_line_of(t, f.token)!r})")

    lines = {line.lower() for line in body.splitlines()}
    for heading in t.headings:
        if heading.lower() not in lines:
            report("section:" + heading.rstrip(":"), f"section heading {heading!r} missing")

    # Anything still looking like a placeholder, wherever it is: a line the patterns above did not recognise
    # (reworded, moved) must not slip through with "[...]" in it.
    known = {f.token[f.token.index("[") :]: f.key for f in t.fields}
    for m in PLACEHOLDER.finditer(text):
        key = known.get(m.group(0), f"placeholder:{m.group(0)}")
        report(key, f"still the placeholder {m.group(0)}; fill it in or remove it")

    order = {k: i for i, k in enumerate(t.keys)}
    return sorted(problems.values(), key=lambda p: (order.get(p.field, len(order)), p.field))


def _line_of(t: CommsTemplate, token: str) -> str:
    return next(line.strip() for line in t.text.splitlines() if token in line)


def validate(
    template: CommsTemplate | str, text: str, *, expected_incident_id: str | None = None
) -> list[str]:
    """The fields of a submitted message that are missing or not filled in (empty when it is complete).

    These are the names ``CommsPosted.missing_fields`` records; :func:`check` says what is wrong with each.
    """
    return [p.field for p in check(template, text, expected_incident_id=expected_incident_id)]
