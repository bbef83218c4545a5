"""A drill's reports, written from its journal into ``reports/<drill-id>/``.

- ``postmortem.md``: the seed's postmortem (blameless timeline, 5 whys, action items, metrics, impact), the
  document people edit afterwards; its action-item Status column is what the monthly report counts.
- ``scorecard.json``: the scorecard as ``drill score --json`` prints it, for scripts and the monthly report.
- ``report.html``: one self-contained page (inline CSS and SVG, no scripts, nothing fetched) with the
  timeline chart of the phases against the SLA targets.
- ``junit.xml``: one testcase per check, so CI dashboards show a drill like a test run.
- ``action-items.csv``, ``postmortem.confluence.xhtml`` and, for Chaos Toolkit drills, ``journal.json``:
  the same retrospective for Jira, Confluence and ``chaos report`` (see :mod:`drills.reporting.exports`).

Every text people typed goes through secret redaction first (:mod:`drills.reporting.redaction`, called by
``build_view``); the scorecard JSON and JUnit are written from the redacted scorecard too.

Every renderer is a pure function of the scorecard and the events, and nothing depends on when it runs: the
same journal gives byte-identical files (the golden-file tests rely on it).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from markupsafe import Markup

from drills.adapters.store.journal import stream_journal
from drills.engine.scoring import score
from drills.engine.traffic import Traffic, split_traffic
from drills.errors import DrillError, JournalError
from drills.model.durations import format_duration
from drills.model.events import Event
from drills.model.policy import Policy
from drills.model.scorecard import CheckStatus, Scorecard
from drills.reporting import _templates
from drills.reporting.chart import PHASE_COLOURS, STATUS_COLOURS, timeline_svg
from drills.reporting.exports import chaostoolkit_journal_json, confluence_storage, is_chaostoolkit, jira_csv
from drills.reporting.text import plural
from drills.reporting.view import ACTION_DUE_DAYS, DrillView, build_view, severity_call

POSTMORTEM = "postmortem.md"
SCORECARD = "scorecard.json"
HTML = "report.html"
JUNIT = "junit.xml"
JIRA_CSV = "action-items.csv"
CONFLUENCE = "postmortem.confluence.xhtml"
CHAOSTOOLKIT_JOURNAL = "journal.json"


@dataclass(frozen=True)
class ReportPaths:
    directory: Path
    postmortem: Path
    scorecard_json: Path
    html: Path
    junit: Path
    scorecard: Scorecard
    jira_csv: Path | None = None
    confluence: Path | None = None
    chaostoolkit_journal: Path | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        extra = (self.jira_csv, self.confluence, self.chaostoolkit_journal)
        return (self.postmortem, self.scorecard_json, self.html, self.junit, *(p for p in extra if p))


def declared_impact_lines(view: DrillView) -> list[str]:
    """The scenario's declared impact (users, service status, features, data loss, revenue)."""
    impact = view.impact
    if impact is None:
        return ["The scenario's declared impact is not in this journal (written before drills recorded it)."]
    lines = [
        f"Users affected: {impact.users_affected_pct:g}% (service {impact.service_status.value}).",
    ]
    if impact.features:
        lines.append(f"Features down or degraded: {', '.join(impact.features)}.")
    lines.append(
        f"Revenue impact: {impact.revenue_impact.value}; data-loss risk: {impact.data_loss_risk.value}."
    )
    return lines


def measured_impact_lines(view: DrillView) -> list[str]:
    """What the virtual users saw: users affected (peak and user-minutes), failed requests, features down,
    the error budget burned, and when impact was reduced next to the probes' health."""
    sc = view.scorecard
    m, c = sc.impact, sc.clocks
    if m is None:
        return []
    lines = [
        f"Measured: users affected peaked at {m.peak_users_affected:,} ({m.peak_users_affected_pct:g}%), "
        f"{m.user_minutes:,.1f} user-minutes; {m.failed_requests:,.0f} failed requests of {m.requests:,.0f}; "
        f"worst service status {m.worst_status}.",
        "Features down: " + (", ".join(m.features_down) if m.features_down else "none") + ".",
        f"Measured severity {m.severity.value} by the severity matrix (the scenario declares "
        f"{m.declared_severity.value}).",
    ]
    if c.impact_reduced is not None:
        health = (
            f"; the health probes held from {format_duration(c.health_mitigated - view.t0)}"
            if c.health_mitigated is not None
            else "; the health probes never held for the exit window"
        )
        lines.append(
            f"Impact reduced (users affected under the threshold) {format_duration(c.impact_reduced - view.t0)} after T0{health}."
        )
    lines.extend(
        f"Error budget: {b.burned_pct:g}% of {b.service}'s {b.availability_pct:g}% availability budget "
        f"({format_duration(b.window)} window, scaled 1/{b.time_scale:g} for the drill) burned."
        for b in sc.error_budget
    )
    lines.extend(f"SLO alert floor: {f.text}." for f in sc.alert_floors)
    lines.extend(sc.scenario_warnings)
    return lines


def impact_lines(view: DrillView) -> list[str]:
    sc = view.scorecard
    c = sc.clocks
    lines = declared_impact_lines(view) + measured_impact_lines(view)
    if c.mitigated is not None:
        who = {"human": " by the response", "system": " by the system itself (self-healing)"}
        lines.append(
            f"Users were affected for {format_duration(c.mitigated - view.t0)}, from T0 until impact was "
            f"reduced{who.get(c.mitigated_by, '')}."
        )
    else:
        lines.append(
            f"Impact was not reduced before the {view.kind.lower()} ended: users were affected for at least "
            f"{format_duration(view.end - view.t0)}."
        )
    unhealthy = timedelta(0)
    periods = 0
    down_since = None
    for at, healthy in view.health:
        if not healthy and down_since is None:
            down_since, periods = at, periods + 1
        elif healthy and down_since is not None:
            unhealthy += at - down_since
            down_since = None
    if down_since is not None:
        unhealthy += view.end - down_since
    if periods:
        lines.append(
            f"The health probes saw the service unhealthy for {format_duration(unhealthy)} in "
            f"{plural(periods, 'period')}."
        )
    lines.append(f"True severity {sc.true_severity.value} by the severity matrix (category {sc.category}).")
    if c.resolved is not None:
        lines.append(f"Resolved {format_duration(c.ttr)} after T0.")
    else:
        lines.append("Not resolved when the journal ends.")
    if c.reopens:
        lines.append(f"Relapsed after mitigation {plural(c.reopens, 'time')}.")
    return lines


def render_postmortem(
    scorecard: Scorecard,
    events: Sequence[Event],
    *,
    due_days: int = ACTION_DUE_DAYS,
    secrets: Iterable[str] | None = None,
    traffic: Traffic | None = None,
) -> str:
    view = build_view(scorecard, events, due_days=due_days, secrets=secrets, traffic=traffic)
    return _postmortem(view, due_days)


def render_html(
    scorecard: Scorecard,
    events: Sequence[Event],
    *,
    due_days: int = ACTION_DUE_DAYS,
    secrets: Iterable[str] | None = None,
    traffic: Traffic | None = None,
) -> str:
    return _html(build_view(scorecard, events, due_days=due_days, secrets=secrets, traffic=traffic))


def render_confluence(view: DrillView) -> str:
    return confluence_storage(view, impact_lines(view), severity_call(view.scorecard))


def _postmortem(view: DrillView, due_days: int) -> str:
    return _templates.render(
        "postmortem.md.j2",
        v=view,
        severity_call=severity_call(view.scorecard),
        impact=impact_lines(view),
        due_days=due_days,
    )


def _html(view: DrillView) -> str:
    return _templates.render(
        "report.html.j2",
        v=view,
        severity_call=severity_call(view.scorecard),
        impact=impact_lines(view),
        # Built with ElementTree, which escaped every text in it: safe to insert as markup.
        chart=Markup(timeline_svg(view)),  # noqa: S704
        phase_colours=PHASE_COLOURS,
        status_colours={s.value: colour for s, colour in STATUS_COLOURS.items()},
    )


def render_junit(scorecard: Scorecard) -> str:
    """One testsuite, one testcase per check: failures carry target vs measured and the seed citation."""
    checks = scorecard.checks
    failures = sum(c.status == CheckStatus.FAIL for c in checks)
    skipped = sum(c.status in (CheckStatus.NOT_APPLICABLE, CheckStatus.NOT_MEASURED) for c in checks)
    suite = ET.Element(
        "testsuite",
        {
            "name": f"drill {scorecard.drill_id}",
            "tests": str(len(checks)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
        },
    )
    if scorecard.started is not None:
        suite.set("timestamp", scorecard.started.strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("scenario", scorecard.scenario_id),
        ("true_severity", scorecard.true_severity.value),
        ("declared_severity", scorecard.declared_severity.value if scorecard.declared_severity else "none"),
        ("score", f"{scorecard.score:.1f}"),
        ("grade", scorecard.grade),
        ("passed", str(scorecard.passed).lower()),
    ):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for c in checks:
        case = ET.SubElement(suite, "testcase", {"classname": c.family.value, "name": c.id})
        if c.target is not None:
            measured = f"target {format_duration(c.target)}, measured {format_duration(c.measured)}"
        else:
            measured = c.detail or c.status.value
        if c.status == CheckStatus.FAIL:
            failure = ET.SubElement(
                case, "failure", {"message": f"{c.rule}: {measured}", "type": c.family.value}
            )
            lines = (c.rule, measured, c.detail if c.detail != measured else "", f"source: {c.citation}")
            failure.text = "\n".join(line for line in lines if line)
        elif c.status == CheckStatus.NOT_APPLICABLE:
            ET.SubElement(
                case, "skipped", {"message": f"n/a for a {scorecard.true_severity.value} incident: {c.rule}"}
            )
        elif c.status == CheckStatus.NOT_MEASURED:
            ET.SubElement(
                case, "skipped", {"message": f"not measured: {c.rule}{': ' + c.detail if c.detail else ''}"}
            )
        else:
            ET.SubElement(case, "system-out").text = f"{c.rule}: {measured} [{c.citation}]"
    ET.indent(suite, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def scorecard_json(scorecard: Scorecard) -> str:
    return scorecard.model_dump_json(indent=2) + "\n"


def _write(path: Path, text: str) -> None:
    # Write then rename: a reader (the monthly report) never sees half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_reports(
    journal_path: Path,
    out_dir: Path,
    policy: Policy | None = None,
    *,
    due_days: int = ACTION_DUE_DAYS,
    secrets: Iterable[str] | None = None,
) -> ReportPaths:
    """Score a journal and write its reports into ``out_dir`` (created if needed).

    The journal is streamed: its observer traffic is folded as it is read (``engine.traffic``), so a
    journal of hundreds of thousands of lines is never held whole.
    """
    stream = stream_journal(journal_path)
    events, traffic = split_traffic(stream)
    if stream.drill_started is None:
        raise JournalError(
            f"{journal_path} has no drill.started event, so there is nothing to report on",
            hint="reports are written from a drill's journal.jsonl; check the path",
        )
    scorecard = score(events, policy, traffic)
    return write_reports_for(scorecard, events, out_dir, due_days=due_days, secrets=secrets, traffic=traffic)


def write_reports_for(
    scorecard: Scorecard,
    events: Sequence[Event],
    out_dir: Path,
    *,
    due_days: int = ACTION_DUE_DAYS,
    secrets: Iterable[str] | None = None,
    traffic: Traffic | None = None,
) -> ReportPaths:
    """Write the reports of an already scored drill (the runner has the scorecard in hand).

    ``secrets``: values to redact besides the secret-shaped ones; default, the environment's secrets.
    ``traffic``: the observer traffic split off ``events`` when the journal was streamed.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        view = build_view(scorecard, events, due_days=due_days, secrets=secrets, traffic=traffic)
        chaos = is_chaostoolkit(view.events)
        paths = ReportPaths(
            directory=out_dir,
            postmortem=out_dir / POSTMORTEM,
            scorecard_json=out_dir / SCORECARD,
            html=out_dir / HTML,
            junit=out_dir / JUNIT,
            scorecard=scorecard,
            jira_csv=out_dir / JIRA_CSV,
            confluence=out_dir / CONFLUENCE,
            chaostoolkit_journal=out_dir / CHAOSTOOLKIT_JOURNAL if chaos else None,
        )
        _write(paths.scorecard_json, scorecard_json(view.scorecard))
        _write(paths.postmortem, _postmortem(view, due_days))
        _write(paths.html, _html(view))
        _write(paths.junit, render_junit(view.scorecard))
        _write(out_dir / JIRA_CSV, jira_csv(view))
        _write(out_dir / CONFLUENCE, render_confluence(view))
        if chaos:
            _write(out_dir / CHAOSTOOLKIT_JOURNAL, chaostoolkit_journal_json(view))
    except OSError as e:
        raise DrillError(
            f"cannot write reports to {out_dir}: {e.strerror or e}",
            hint="choose another directory with --out or set DRILLS_REPORTS",
        ) from e
    return paths
