"""The Jinja2 environment of the reports: templates shipped as package files, with the few filters they share.

Markdown templates are rendered without escaping (table cells are escaped by the ``cell`` filter instead);
HTML templates (``*.html.j2``) autoescape everything, so text from a journal can never become markup.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import jinja2

from drills.model.durations import format_duration
from drills.model.scorecard import CheckStatus

STATUS_TEXT = {
    CheckStatus.PASS: "✅ pass",
    CheckStatus.FAIL: "❌ fail",
    CheckStatus.NOT_APPLICABLE: "n/a",
    CheckStatus.NOT_MEASURED: "⏳ not measured",
}


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell: no pipes or line breaks."""
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _duration(value: timedelta | None) -> str:
    return format_duration(value)


def _clock(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(UTC):%H:%M:%S}"


def _stamp(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _status(value: CheckStatus | None) -> str:
    return "-" if value is None else STATUS_TEXT[value]


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("drills.reporting", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(cell=_cell, duration=_duration, clock=_clock, stamp=_stamp, status=_status)
    return env


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
