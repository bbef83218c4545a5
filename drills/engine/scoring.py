"""The scorecard: every rule of the seed judged against one drill's journal, a 0-100 score and a debrief.

The score is for the *process*: a failed check says what the system, the runbook or the paging path let
happen, never who was slow (the seed's "Blame individuals" is a don't, incident-response-framework.md:513).
It is deterministic: the same events in any order, delivered any number of times, give the same scorecard,
and nothing here reads a clock.

Each rule in :mod:`drills.engine.rules` becomes one :class:`~drills.model.scorecard.Check`, judged by the
one function registered for its id in :mod:`drills.engine.judges` (a module per check family):

- ``n/a`` when the rule does not bind this incident (a P1 rule in a P0 drill, no destructive change to
  preserve evidence for). They stay listed so that both readings of a contradictory seed show.
- ``pass`` / ``fail`` when it could be judged. SLAs are judged on active time (pauses cut out), against the
  *true* severity of the scenario (the game master's truth), not the one the responders declared.
- Something that never happened: ``fail`` once the drill has ended ("not done: ..."); in a live drill,
  ``fail`` once its budget has run out, else ``not-measured`` ("not done yet").

Here the checks become the score: the weighted mean of the family scores, less hints, capped just under
the pass mark when a core SLA failed, so that the score and the pass always agree. The formula, the pass
rule and every decision taken where the seed is silent are in docs/scoring.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import ValidationError

from drills.engine.impact_score import impact_parts
from drills.engine.judges import JUDGES, Drill, Judged, fmt
from drills.engine.judges.discipline import DOCUMENTATION_WINDOW
from drills.engine.judges.mitigation import recovery_when, recovery_words, revert_before_recovery
from drills.engine.people import who_did_what
from drills.engine.rules import CORE, RULE_ORDER, RULES
from drills.engine.timeline import ZERO, Timeline, build
from drills.engine.traffic import Traffic, action_entries
from drills.errors import JournalError
from drills.model.events import DrillStarted, Event, HintUsed, Outcome
from drills.model.policy import Policy, SlaOverrides
from drills.model.scorecard import Check, CheckFamily, CheckStatus, Scorecard

__all__ = ["DOCUMENTATION_WINDOW", "HINT_COST_CAP", "grade", "judge_all", "scenario_overrides", "score"]

#: Hints cost what the scenario says, but never more than this many points in total.
HINT_COST_CAP = 30
#: A failed core SLA caps the score this far under the pass mark, so a failed drill never shows a pass score.
CORE_CAP_MARGIN = 0.1
#: An alert notification slower than this to reach drills is worth a finding of its own.
SLOW_DELIVERY = timedelta(minutes=1)

PASS, FAIL = CheckStatus.PASS, CheckStatus.FAIL


def judge_all(d: Drill) -> list[Judged]:
    """Every rule, in table order, through its judge (or as not applicable / healed alone)."""
    out = []
    for r in RULES:
        if not r.applies_to(d.severity):
            out.append(d.other_severity(r))
        elif d.healed_alone and (r.family != CheckFamily.DETECTION or d.tl.first_alert is None):
            out.append(d.self_healed(r))
        else:
            out.append(JUDGES[r.id](d, r))
    return out


def scenario_overrides(started: DrillStarted) -> SlaOverrides:
    """The scenario's ``sla:`` block as the journal recorded it, validated."""
    try:
        return SlaOverrides.model_validate(started.sla_overrides)
    except ValidationError as e:
        problems = "; ".join(
            f"sla_overrides.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise JournalError(
            f"drill.started has invalid SLA overrides: {problems}",
            hint="names are those of `drill schema policy` (e.g. mtta_p0), values durations like '5m'",
        ) from e


def score(events: Sequence[Event], policy: Policy | None = None, traffic: Traffic | None = None) -> Scorecard:
    """Judge a drill's journal against the seed's rules (with ``policy`` and the scenario's overrides).

    ``traffic``: the observer traffic ``split_traffic`` took out of ``events`` (a big journal, streamed);
    the scorecard is the one of every event.
    """
    policy = policy or Policy()
    # The traffic judges nothing, but its last instant is part of the journal's horizon.
    tl = build(events, now=traffic.last_at if traffic is not None else None)
    started = tl.started
    if started is None:
        raise JournalError(
            "the journal has no drill.started event, so there is no scenario to score against",
            hint="score a journal written by `drill run`, or add a drill.started line (see docs/journal.md)",
        )
    targets = policy.targets(scenario_overrides(started))
    drill = Drill(tl, started, targets)
    judged = judge_all(drill)
    checks = [j.check for j in judged]

    weights: dict[str, float] = {f.value: float(getattr(policy.weights, f.value)) for f in CheckFamily}
    family_scores: dict[str, float] = {}
    counted: dict[CheckFamily, int] = {}
    for family in CheckFamily:
        in_family = [c for c in checks if c.family == family and c.status in (PASS, FAIL)]
        if in_family:
            counted[family] = len(in_family)
            family_scores[family.value] = round(
                100 * sum(c.status == PASS for c in in_family) / len(in_family), 1
            )
    total_weight = sum(weights[f.value] for f in counted)
    base = (
        sum(weights[f.value] * family_scores[f.value] for f in counted) / total_weight
        if total_weight
        else 0.0
    )
    hints = _hints(tl)
    hint_cost = sum(h.cost for h in hints)
    charged = min(hint_cost, HINT_COST_CAP)
    value = round(min(100.0, max(0.0, base - charged)), 1)

    failed = [c for c in checks if c.status == FAIL]
    # Resolving while users are still affected is as bad as a missed core SLA: the drill cannot pass.
    core = CORE[drill.severity] + (("resolution.healthy",) if tl.resolved_while_affected else ())
    core_failed = [c for c in failed if c.id in core]
    explained = f"weighted family mean {base:.1f}"
    if charged:
        explained += f" - {charged} for hints = {value:.1f}"
    cap = round(max(0.0, policy.pass_score - CORE_CAP_MARGIN), 1)
    if core_failed and value > cap:
        value = cap
        names = ", ".join(c.id for c in core_failed)
        explained += (
            f", capped at {cap:.1f} (just under the pass mark {policy.pass_score:g}): core SLA {names} failed"
        )
    if not counted:
        explained = "nothing could be judged: 0"
    passed = value >= policy.pass_score
    not_steady = tl.ended is not None and tl.ended.outcome == Outcome.NOT_STEADY
    if not_steady:
        # Nothing was injected, nobody responded to anything: no score to pass with.
        value, passed = 0.0, False
        explained = "not scored: the steady state did not hold before the fault, so nothing was injected: 0"
    explained += f"; {'passed' if passed else 'failed'} (pass mark {policy.pass_score:g})"

    def weight(c: Check) -> float:
        return weights[c.family.value] / counted[c.family]

    by_importance = sorted(failed, key=lambda c: (-weight(c), RULE_ORDER[c.id]))
    finding_of = {j.check.id: j.finding for j in judged}
    findings = [finding_of[c.id] for c in by_importance if finding_of[c.id]]
    impact = impact_parts(drill)
    findings.extend(impact.findings)
    findings.extend(_observations(drill, {c.id: c for c in checks}, hints, hint_cost))
    improve_next = None
    if by_importance and not not_steady:  # nothing to improve in a response that never had a fault
        top = by_importance[0]
        improve_next = f"{top.id}: {finding_of[top.id] or top.detail}"

    declared = tl.severity_final.severity if tl.severity_final else None
    raised = {r.action.id: r.describe() for r in tl.raised_impact}
    actions, actions_omitted = action_entries(tl.actions, traffic, raised)
    return Scorecard(
        drill_id=started.drill_id,
        scenario_id=started.scenario_id,
        scenario_title=started.scenario_title,
        category=started.category,
        mode=started.mode.value,
        trainee=started.trainee,
        is_drill=started.is_drill,
        started=started.at,
        true_severity=started.true_severity,
        declared_severity=declared,
        severity_correct=declared == (drill.measured_severity or started.true_severity),
        clocks=tl.clocks(),
        checks=checks,
        outcome=tl.ended.outcome.value if tl.ended else "",
        hints_used=len(hints),
        hint_cost=hint_cost,
        score=value,
        base_score=round(base, 1),
        score_explained=explained,
        grade=grade(value, policy),
        passed=passed,
        family_scores=family_scores,
        findings=findings,
        improve_next=improve_next,
        actions=actions,
        actions_omitted=actions_omitted,
        people=who_did_what(events),
        impact=impact.summary,
        error_budget=impact.error_budget,
        alert_floors=impact.alert_floors,
        scenario_warnings=impact.scenario_warnings,
    )


def grade(value: float, policy: Policy) -> str:
    """The letter whose lowest score ``value`` reaches; below every threshold, F."""
    for letter, lowest in sorted(policy.grades.items(), key=lambda kv: (-kv[1], kv[0])):
        if value >= lowest:
            return letter
    return "F"


def _hints(tl: Timeline) -> list[HintUsed]:
    """Each hint once (asking twice for the same hint costs once)."""
    seen: dict[int, HintUsed] = {}
    for e in tl.events:
        if isinstance(e, HintUsed) and e.index not in seen:
            seen[e.index] = e
    return list(seen.values())


def _observations(d: Drill, checks: dict[str, Check], hints: list[HintUsed], hint_cost: int) -> list[str]:
    """Facts worth a debrief line that are not a failed check."""
    tl = d.tl
    out: list[str] = []
    if tl.first_alert is None and tl.t0 is not None and checks["mttd"].status != FAIL:
        out.append("No alert fired before the journal ended; monitoring may not cover this failure mode.")
    if tl.mitigated_by == "system":
        if revert_before_recovery(d):
            out.append(
                f"Health came back {recovery_when(d)}, only after drills reverted the fault: the "
                "responders' changes had not restored service by then."
            )
        else:
            out.append(
                f"The service recovered by itself {recovery_words(d)}: self-healing worked, and "
                "this drill did not exercise a human mitigation."
            )
    if tl.reopens:
        out.append(
            f"The incident reopened {tl.reopens} time(s) after it was mitigated or resolved: the first fix "
            "did not hold. The first mitigation and the final resolution are both kept."
        )
    alert = tl.first_alert
    if alert is not None and alert.received_at is not None and alert.received_at - alert.at > SLOW_DELIVERY:
        out.append(
            f"The alert took {fmt(alert.received_at - alert.at)} from firing to reaching drills; the "
            "notification path may be slow."
        )
    if hints:
        capped = f", capped at {HINT_COST_CAP}" if hint_cost > HINT_COST_CAP else ""
        out.append(f"{len(hints)} hint(s) were used, costing {min(hint_cost, HINT_COST_CAP)} points{capped}.")
    paused = tl.clocks().paused
    if paused > ZERO:
        out.append(f"The drill was paused for {fmt(paused)}; paused time is left out of every SLA.")
    return out
