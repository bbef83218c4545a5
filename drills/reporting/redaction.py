"""The one place reports pass what people typed through secret redaction, before any renderer sees it.

Journals are scrubbed when written, but a report may be written from a journal that came from elsewhere (a
real incident's, an older drills'), and people paste tokens into notes and messages. So every report
renderer (postmortem, HTML, JUnit, scorecard JSON, the exports) works from events and a scorecard that went
through :func:`scrub_events` / :func:`scrub_scorecard`, which call ``drills.engine.redact`` on every string.
Ids and times are left alone, as the journal writer does: a secret equal to an id must not break the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

from pydantic import BaseModel

from drills.engine.redact import Redactor, redactor_for, secrets_from_env
from drills.model.events import EVENT_ADAPTER, Event
from drills.model.scorecard import Scorecard

Redact = Callable[[str], str]

_EVENT_STRUCTURAL = frozenset({"v", "type", "id", "at", "recorded_at", "received_at", "source"})
_SCORECARD_STRUCTURAL = frozenset(
    {"v", "drill_id", "scenario_id", "started", "clocks", "true_severity", "declared_severity", "score"}
)


def report_redactor(secrets: Iterable[str] | None = None, env: Mapping[str, str] | None = None) -> Redactor:
    """The redactor of reports: the given secrets, else the environment's secret-named values."""
    if secrets is None:
        secrets = secrets_from_env(os.environ if env is None else env)
    return redactor_for(secrets)


def _scrub(data: dict[str, Any], redact: Redactor, keep: frozenset[str]) -> dict[str, Any]:
    return {k: (v if k in keep else redact.data(v)) for k, v in data.items()}


def scrub_events(events: Iterable[Event], redact: Redactor) -> list[Event]:
    """The events with every text scrubbed; an event with nothing to scrub is kept as it is (the same object).

    Only the fields that hold text are looked at (strings and the lists and mappings of them; enums, times,
    numbers and the structural fields cannot carry what people typed), each distinct text once: a big
    journal repeats the same actor, reason and detail thousands of times. Only an event that had a secret
    is dumped, scrubbed whole and validated again.
    """
    clean: dict[str, bool] = {}

    def is_clean(text: str) -> bool:
        known = clean.get(text)
        if known is None:
            known = clean[text] = redact(text) == text
        return known

    # Events that differ only in id and time (most of a big journal) are checked once.
    texts: dict[type[Event], Callable[[dict[str, Any]], Any]] = {}
    known: dict[object, bool] = {}
    out: list[Event] = []
    for e in events:
        cls = type(e)
        content = texts.get(cls)
        if content is None:
            names = [n for n in cls.model_fields if n not in _EVENT_STRUCTURAL]
            content = texts[cls] = itemgetter(*names) if names else (lambda _: ())
        values = content(e.__dict__)
        key: object = (cls, values)
        try:
            ok = known.get(key)
        except TypeError:  # a list or mapping among the values: not hashable, checked each time
            key, ok = None, None
        if ok is None:
            ok = _clean_value(values if isinstance(values, tuple) else (values,), is_clean)
            if key is not None:
                known[key] = ok
        if ok:
            out.append(e)
            continue
        data = e.model_dump(mode="json", exclude_none=True)
        out.append(EVENT_ADAPTER.validate_python(_scrub(data, redact, _EVENT_STRUCTURAL)))
    return out


def _clean_value(value: object, is_clean: Callable[[str], bool]) -> bool:
    """Whether redaction leaves this field's value unchanged (``Redactor.data``'s reach: keys included)."""
    if type(value) is str:  # not isinstance: a StrEnum is a name from the schema, not typed text
        return is_clean(value)
    if isinstance(value, dict):
        return all(
            (not isinstance(k, str) or is_clean(k)) and _clean_value(v, is_clean) for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return all(_clean_value(v, is_clean) for v in value)
    if isinstance(value, BaseModel):  # nested models (hints, impact, differences)
        return all(_clean_value(v, is_clean) for v in value.__dict__.values())
    return True


def scrub_scorecard(scorecard: Scorecard, redact: Redactor) -> Scorecard:
    data = scorecard.model_dump(mode="json")
    scrubbed = _scrub(data, redact, _SCORECARD_STRUCTURAL)
    return scorecard if scrubbed == data else Scorecard.model_validate(scrubbed)


__all__ = ["Redact", "report_redactor", "scrub_events", "scrub_scorecard"]
