"""The Jinja2 environment of the reports: templates shipped as package files, with the few filters they share.

Markdown templates are rendered without escaping (table cells are escaped by the ``cell`` filter instead);
HTML templates (``*.html.j2``) autoescape everything, so text from a journal can never become markup.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

import jinja2

from drills.model.durations import format_duration
from drills.model.scorecard import CheckStatus
from drills.reporting.text import plural

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


def _offset(value: timedelta) -> str:
    return ("-" if value < timedelta(0) else "+") + format_duration(abs(value))


def _fenced(text: str) -> str:
    """A Markdown code block that holds ``text`` whatever backticks it contains."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


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
    env.filters.update(
        cell=_cell,
        duration=_duration,
        clock=_clock,
        stamp=_stamp,
        status=_status,
        offset=_offset,
        fenced=_fenced,
        plural=plural,
    )
    return env


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
