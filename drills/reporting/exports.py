"""A drill's retrospective in the formats of the tools teams already keep postmortems in.

- ``action-items.csv``: the action items as Jira's CSV importer reads them (one issue a row: Summary,
  Description, Issue Type, Priority, Labels, Component, Due Date). No Assignee: items are owned by a role or
  a team (the Component), never a person.
- ``postmortem.confluence.xhtml``: the postmortem in Confluence *storage format* (the XHTML a page body is
  stored in, as the REST API's ``body.storage.value`` takes it): an info panel macro for the blameless note,
  status macros for results, code macros for the messages posted.
- ``journal.json``: for a Chaos Toolkit experiment run as a drill, a journal shaped like chaoslib's (the
  file ``chaos run`` writes), rebuilt from the ``chaostoolkit.event`` events, so ``chaos report`` and other
  Chaos Toolkit tooling keep working. The drill's own scores ride along in ``experiment.extensions``.

Pure functions of the report view (whose texts are already redacted), deterministic like every report.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from drills.model.durations import format_duration
from drills.model.events import ChaosToolkitEvent, DrillEnded, Event, FaultInjected
from drills.model.scorecard import CheckStatus
from drills.reporting.view import DrillView, improvement_of, signed_offset

JIRA_COLUMNS = (
    "Summary",
    "Description",
    "Issue Type",
    "Priority",
    "Labels",
    "Labels",
    "Component",
    "Due Date",
)
#: Jira's default priority scheme, by the incident's true severity.
JIRA_PRIORITY = {"P0": "Highest", "P1": "High", "P2": "Medium", "P3": "Low"}

CONFLUENCE_AC = "http://atlassian.com/content"
CONFLUENCE_RI = "http://atlassian.com/resource/identifier"


# ---- Jira ---------------------------------------------------------------------------------------------------


def _label(text: str) -> str:
    """Jira labels cannot hold spaces."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text).strip("-") or "drill"


def jira_csv(view: DrillView) -> str:
    """The action items as a Jira CSV import: map the columns to the fields of the same names when importing
    (both Labels columns to Labels; Due Date format ``yyyy-MM-dd``)."""
    sc = view.scorecard
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(JIRA_COLUMNS)
    for a in view.action_items:
        summary = improvement_of(a.text)
        if len(summary) > 250:
            summary = summary[:249] + "…"
        description = "\n".join(
            (
                a.text,
                "",
                f"From {view.kind.lower()} {sc.drill_id} ({view.incident_id}, {sc.scenario_title}), "
                f"true severity {sc.true_severity.value}.",
                f"Checks: {', '.join(a.check_ids)}.",
                f"Owner: {a.owner}.",
                "Details: postmortem.md of the drill's reports.",
            )
        )
        writer.writerow(
            (
                summary,
                description,
                "Task",
                JIRA_PRIORITY.get(sc.true_severity.value, "Medium"),
                "drill-postmortem" if sc.is_drill else "postmortem",
                _label(f"drill-{sc.category}"),
                a.owner,
                a.due.isoformat(),
            )
        )
    return out.getvalue()


# ---- Confluence ---------------------------------------------------------------------------------------------


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (a terminal's escape codes pasted in a note)."""
    return _NOT_XML.sub("", text)


class _Storage:
    """Builds storage-format XHTML with ElementTree (every text escaped); code bodies become CDATA."""

    def __init__(self) -> None:
        self.root = ET.Element("body")
        self._cdata: list[str] = []

    def el(self, parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        e = ET.SubElement(
            parent, tag, {k.replace("__", ":").replace("_", "-"): xml_text(v) for k, v in attrs.items()}
        )
        if text is not None:
            e.text = xml_text(text)
        return e

    def macro(self, parent: ET.Element, name: str, **params: str) -> ET.Element:
        m = self.el(parent, "ac:structured-macro", ac__name=name, ac__schema_version="1")
        for key, value in params.items():
            self.el(m, "ac:parameter", value, ac__name=key)
        return m

    def status(self, parent: ET.Element, title: str, colour: str) -> None:
        self.macro(parent, "status", title=title, colour=colour)

    def code(self, parent: ET.Element, text: str, title: str) -> None:
        m = self.macro(parent, "code", language="text", title=title)
        body = self.el(m, "ac:plain-text-body")
        body.text = f"\x00CDATA{len(self._cdata)}\x00"
        self._cdata.append(xml_text(text))

    def table(
        self, parent: ET.Element, head: Sequence[str], rows: Sequence[Sequence[str | None]]
    ) -> ET.Element:
        table = self.el(parent, "table")
        tbody = self.el(table, "tbody")
        if head:
            tr = self.el(tbody, "tr")
            for h in head:
                self.el(tr, "th", h)
        for row in rows:
            tr = self.el(tbody, "tr")
            for cell in row:
                self.el(tr, "td", cell if cell is not None else "-")
        return tbody

    def text(self) -> str:
        parts = []
        for child in self.root:
            ET.indent(child, space="  ")
            child.tail = None
            parts.append(ET.tostring(child, encoding="unicode"))
        out = "\n".join(parts)
        for n, raw in enumerate(self._cdata):
            # "]]>" cannot appear inside CDATA: split it across two sections.
            safe = raw.replace("]]>", "]]]]><![CDATA[>")
            out = out.replace(f"\x00CDATA{n}\x00", f"<![CDATA[{safe}]]>")
        return out


_STATUS_MACRO = {
    CheckStatus.PASS: ("PASS", "Green"),
    CheckStatus.FAIL: ("FAIL", "Red"),
    CheckStatus.NOT_APPLICABLE: ("N/A", "Grey"),
    CheckStatus.NOT_MEASURED: ("NOT MEASURED", "Yellow"),
}


def confluence_storage(view: DrillView, impact: Sequence[str], severity_call: str) -> str:
    """The postmortem as Confluence storage-format XHTML (a page body: paste it into the page's source
    editor, or send it as ``body.storage.value``)."""
    sc = view.scorecard
    doc = _Storage()
    root = doc.root
    doc.el(root, "h1", f"Postmortem: {sc.scenario_title}")
    info = doc.macro(root, "info", title="Blameless review")
    body = doc.el(info, "ac:rich-text-body")
    doc.el(
        body,
        "p",
        "It is about the system, the process and the tools, not about people. Everyone acted on what they "
        f"knew at the time. {view.kind} {sc.drill_id} · {view.incident_id} · T0 "
        f"{view.t0:%Y-%m-%d %H:%M:%S} UTC.",
    )

    doc.el(root, "h2", "Summary")
    doc.table(
        root,
        (),
        [
            ("Service", view.started.service if view.started else "-"),
            ("Scenario", f"{sc.scenario_id} (category {sc.category}, mode {sc.mode})"),
            ("Severity", severity_call),
            ("Outcome", sc.outcome or "still open"),
            ("Score", f"{sc.score:.1f} / 100, grade {sc.grade}: {'passed' if sc.passed else 'did not pass'}"),
            ("Incident commander", view.ic or "not assigned"),
        ],
    )

    doc.el(root, "h2", "Impact")
    ul = doc.el(root, "ul")
    for line in impact:
        doc.el(ul, "li", line)

    doc.el(root, "h2", "Participants")
    doc.table(
        root,
        ("Who", "Role in the response", "First acted (T+)"),
        [(p.name, ", ".join(p.roles), signed_offset(p.first_seen)) for p in view.participants],
    )

    doc.el(root, "h2", "Timeline")
    if view.mitigating is not None:
        p = doc.el(root, "p", "Key mitigating action: ")
        strong = doc.el(p, "strong", view.mitigating.what)
        strong.tail = xml_text(f" at {view.mitigating.offset_text}.")
    doc.table(
        root,
        ("T+", "Time (UTC)", "Who", "What"),
        [
            (
                e.offset_text,
                f"{e.at:%H:%M:%S}",
                e.who,
                e.what + (" (key mitigating action)" if e.mitigating else ""),
            )
            for e in view.timeline
        ],
    )

    doc.el(root, "h2", "Messages posted")
    if not view.messages:
        doc.el(root, "p", "No messages were posted.")
    for m in view.messages:
        title = f"{m.offset_text} {m.title} ({m.who}, {m.channel})"
        if m.missing:
            doc.el(root, "p", f"{title}: fields left to fill: {', '.join(m.missing)}.")
        doc.code(root, m.text or "(text not recorded)", title)

    doc.el(root, "h2", "Metrics")
    tbody = doc.table(root, ("Phase", "Metric", "Measures", "Wall", "Active", "Target", "Result"), [])
    for ph in view.phases:
        tr = doc.el(tbody, "tr")
        for cell in (
            ph.name,
            ph.metric,
            ph.measures,
            format_duration(ph.wall) if ph.wall is not None else ph.text,
            format_duration(ph.active),
            format_duration(ph.check.target) if ph.check else "-",
        ):
            doc.el(tr, "td", cell)
        td = doc.el(tr, "td")
        if ph.check is not None:
            doc.status(td, *_STATUS_MACRO[ph.check.status])
        else:
            td.text = "-"

    doc.el(root, "h2", "Root cause analysis (5 Whys)")
    ol = doc.el(root, "ol")
    for why in view.whys:
        doc.el(ol, "li", why)
    if view.root_cause_stated:
        doc.el(root, "p", f'Root cause as stated at resolution: "{view.root_cause_stated}"')

    doc.el(root, "h2", "What went well")
    ul = doc.el(root, "ul")
    for c in view.went_well:
        doc.el(ul, "li", c.rule)
    if not view.went_well:
        doc.el(ul, "li", "Nothing was judged a pass this time.")

    doc.el(root, "h2", "What we learned")
    ul = doc.el(root, "ul")
    for f in view.findings or ["No findings."]:
        doc.el(ul, "li", f)

    doc.el(root, "h2", "Action items")
    tbody = doc.table(root, ("ID", "Action", "Owner", "Due", "Checks", "Status"), [])
    for a in view.action_items:
        tr = doc.el(tbody, "tr")
        for cell in (a.id, a.text, a.owner, a.due.isoformat(), ", ".join(a.check_ids)):
            doc.el(tr, "td", cell)
        doc.status(doc.el(tr, "td"), a.status.upper(), "Blue")
    if not view.action_items:
        doc.el(root, "p", "No check failed; no action items.")

    doc.el(root, "h2", "All checks")
    tbody = doc.table(root, ("Check", "Rule", "Target", "Measured", "Result", "Source"), [])
    for c in sc.checks:
        tr = doc.el(tbody, "tr")
        doc.el(doc.el(tr, "td"), "code", c.id)
        doc.el(tr, "td", c.rule + (f": {c.detail}" if c.detail else ""))
        doc.el(tr, "td", format_duration(c.target))
        doc.el(tr, "td", format_duration(c.measured))
        doc.status(doc.el(tr, "td"), *_STATUS_MACRO[c.status])
        doc.el(tr, "td", c.citation)
    return doc.text() + "\n"


# ---- Chaos Toolkit ------------------------------------------------------------------------------------------


def is_chaostoolkit(events: Sequence[Event]) -> bool:
    return any(
        isinstance(e, ChaosToolkitEvent) or (isinstance(e, FaultInjected) and e.fault_kind == "chaostoolkit")
        for e in events
    )


def _iso(at: datetime) -> str:
    return at.isoformat()


def _chaoslib_version() -> str:
    try:
        return importlib.metadata.version("chaostoolkit-lib")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def chaostoolkit_journal(view: DrillView) -> dict[str, Any]:
    """A chaoslib-shaped journal of the experiment the drill ran, rebuilt from its ``chaostoolkit.event``s.

    What the events do not carry is left empty the way chaoslib leaves it (activity ``output`` is None; the
    experiment holds only the activities that ran, by name and type). Each activity starts when the one
    before it (or its phase) ended: the events record completions.
    """
    sc = view.scorecard
    events = view.events
    ctk = sorted((e for e in events if isinstance(e, ChaosToolkitEvent)), key=lambda e: (e.at, e.id))
    title = next(
        (str(e.detail.get("experiment")) for e in ctk if e.detail.get("experiment")), sc.scenario_title
    )
    start = ctk[0].at if ctk else view.t0
    ended = next((e.at for e in events if isinstance(e, DrillEnded)), None)
    end = ctk[-1].at if ctk else (ended or view.end)

    section = "before"
    cursor = start
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    rollbacks: list[dict[str, Any]] = []
    method: list[dict[str, Any]] = []
    rollback_defs: list[dict[str, Any]] = []
    met_before: bool | None = None
    status: str | None = None
    deviated = False
    interrupted = False
    for e in ctk:
        phase = e.phase
        if phase == "hypothesis-before":
            met_before = bool(e.detail.get("met"))
        elif phase == "method-started":
            section = "method"
        elif phase == "method-completed":
            section = "after"
        elif phase == "rollbacks-started":
            section = "rollbacks"
        elif phase == "interrupted":
            interrupted = True
        elif phase == "finished":
            status = e.detail.get("status") or None
            deviated = bool(e.detail.get("deviated"))
        elif phase == "activity":
            activity = {"type": e.detail.get("kind") or "action", "name": e.detail.get("name") or "?"}
            record = {
                "activity": activity,
                "status": e.detail.get("status") or "succeeded",
                "start": _iso(cursor),
                "end": _iso(e.at),
                "duration": (e.at - cursor).total_seconds(),
                "output": None,
            }
            {"before": before, "method": run, "after": after, "rollbacks": rollbacks}[section].append(record)
            if section == "method":
                method.append(activity)
            elif section == "rollbacks":
                rollback_defs.append(activity)
        cursor = e.at
    if status is None:
        status = "interrupted" if interrupted else "completed"
    failed_run = any(r["status"] != "succeeded" for r in run)
    if failed_run and status == "completed":
        status = "failed"

    def hypothesis(probes: list[dict[str, Any]], met: bool | None) -> dict[str, Any] | None:
        if met is None and not probes:
            return None
        if met is None:
            met = all(p["status"] == "succeeded" for p in probes)
        return {"steady_state_met": met, "probes": probes}

    clocks = sc.clocks
    extension = {
        "name": "drills",
        "drill_id": sc.drill_id,
        "scenario_id": sc.scenario_id,
        "incident_id": view.incident_id,
        "true_severity": sc.true_severity.value,
        "score": sc.score,
        "grade": sc.grade,
        "passed": sc.passed,
        "mitigated_by": clocks.mitigated_by,
        "phases": {p.name: p.seconds for p in view.phases},
    }
    return {
        "chaoslib-version": _chaoslib_version(),
        "platform": f"drills (rebuilt from the journal of drill {sc.drill_id})",
        "node": "drills",
        "experiment": {
            "version": "1.0.0",
            "title": title,
            "description": f"Run as the drill {sc.drill_id}: {sc.scenario_title}",
            "tags": ["drills", sc.category],
            "method": method,
            "rollbacks": rollback_defs,
            "extensions": [extension],
        },
        "start": _iso(start),
        "end": _iso(end),
        "duration": max(end - start, timedelta(0)).total_seconds(),
        "status": status,
        "deviated": deviated,
        "steady_states": {
            "before": hypothesis(before, met_before),
            "after": hypothesis(after, None),
            "during": [],
        },
        "run": run,
        "rollbacks": rollbacks,
    }


def chaostoolkit_journal_json(view: DrillView) -> str:
    return json.dumps(chaostoolkit_journal(view), indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "CONFLUENCE_AC",
    "CONFLUENCE_RI",
    "JIRA_COLUMNS",
    "chaostoolkit_journal",
    "chaostoolkit_journal_json",
    "confluence_storage",
    "is_chaostoolkit",
    "jira_csv",
]
