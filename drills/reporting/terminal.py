"""The scorecard on a terminal (rich): what `drill score` prints and the runner shows when a drill ends."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from drills.model.durations import format_duration
from drills.model.scorecard import CheckStatus, Scorecard
from drills.reporting.view import severity_call

_STYLE = {
    CheckStatus.PASS: "green",
    CheckStatus.FAIL: "bold red",
    CheckStatus.NOT_APPLICABLE: "dim",
    CheckStatus.NOT_MEASURED: "yellow",
}


def _measured(sc: Scorecard) -> list[RenderableType]:
    """What users saw, when the drill had virtual users: TTM to impact reduced beside the probes' TTM, the
    figures, the error budget, the SLO alert's floor and the scenario checks."""
    m, c = sc.impact, sc.clocks
    if m is None:
        return []
    lines = [
        Text("\nWhat users saw:", style="bold"),
        Text(
            f"  TTM to impact reduced {format_duration(c.ttm)}; to the probes' health "
            f"{format_duration(c.ttm_health)}"
        ),
        Text(
            f"  users affected peak {m.peak_users_affected:,} ({m.peak_users_affected_pct:g}%), "
            f"{m.user_minutes:,.1f} user-minutes; {m.failed_requests:,.0f} failed requests; worst status "
            f"{m.worst_status}; features down: {', '.join(m.features_down) or 'none'}; measured "
            f"{m.severity.value}"
        ),
    ]
    lines.extend(
        Text(f"  error budget: {b.burned_pct:g}% of {b.service}'s {b.availability_pct:g}% budget burned")
        for b in sc.error_budget
    )
    lines.extend(Text(f"  SLO alert floor: {f.text}") for f in sc.alert_floors)
    lines.extend(Text(f"  {w}", style="yellow") for w in sc.scenario_warnings)
    return list(lines)


def scorecard_renderable(scorecard: Scorecard, *, show_na: bool = False) -> RenderableType:
    """Header with score and grade, the clocks, every check (n/a ones only with ``show_na``) and findings."""
    sc = scorecard
    verdict = Text.assemble(
        (f"{sc.score:.1f}/100 ", "bold"),
        (f"grade {sc.grade} ", "bold"),
        ("passed" if sc.passed else "did not pass", "bold green" if sc.passed else "bold red"),
    )
    c = sc.clocks
    clocks = Table.grid(padding=(0, 2))
    for _ in range(5):
        clocks.add_column()
    clocks.add_row(*(Text(h, style="dim") for h in ("", "TTD", "TTA", "TTM", "TTR")))
    clocks.add_row("wall", *(format_duration(v) for v in (c.ttd, c.tta, c.ttm, c.ttr)))
    clocks.add_row(
        "active", *(format_duration(v) for v in (c.ttd_active, c.tta_active, c.ttm_active, c.ttr_active))
    )
    facts = Text.assemble(
        ("severity ", "dim"),
        severity_call(sc),
        "\n",
        ("outcome ", "dim"),
        sc.outcome or "still open",
        ("   hints ", "dim"),
        f"{sc.hints_used} (cost {sc.hint_cost})",
        ("   mitigated by ", "dim"),
        c.mitigated_by,
    )
    header = Panel(
        Group(verdict, facts, clocks),
        # user text: Text, so a `[/]` in an id or title is shown, never read as markup
        title=Text(f"{'drill' if sc.is_drill else 'incident'} {sc.drill_id}"),
        subtitle=Text(sc.scenario_title) if sc.scenario_title else None,
        expand=False,
    )
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    # Fixed widths: the detail column takes what is left and wraps, never the numbers.
    table.add_column("check", no_wrap=True, width=max((len(c.id) for c in sc.checks), default=5))
    table.add_column("target", justify="right", no_wrap=True, width=6)
    table.add_column("measured", justify="right", no_wrap=True, width=8)
    table.add_column("result", no_wrap=True, width=12)
    # The measurement in words; the full rule and its seed citation are in --json and the reports.
    table.add_column("detail")
    hidden = 0
    for check in sc.checks:
        if check.status == CheckStatus.NOT_APPLICABLE and not show_na:
            hidden += 1
            continue
        table.add_row(
            Text(check.id),
            format_duration(check.target),
            format_duration(check.measured),
            Text(check.status.value, style=_STYLE[check.status]),
            Text(check.detail or check.rule, style="dim"),
        )
    parts: list[RenderableType] = [header, table]
    if hidden:
        parts.append(
            Text(
                f"{hidden} checks n/a for a {sc.true_severity.value} incident (--all shows them)", style="dim"
            )
        )
    parts.extend(_measured(sc))
    if sc.findings:
        parts.append(Text("\nWhat we learned:", style="bold"))
        parts.extend(Text(f"  - {f}") for f in sc.findings)
    return Group(*parts)
