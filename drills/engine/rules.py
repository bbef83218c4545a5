"""The seed's rules as a table: one row per scorecard check, with its family, words, seed line and target.

The timer (live budgets) and the scorer (the scorecard) both read this table, so a rule's id, wording and
citation are written once. Rows are in lifecycle order (detect, acknowledge, triage, communicate, escalate,
mitigate, resolve, postmortem): the scorecard lists checks in this order and breaks ties with it.

Where the seed contradicts itself the rows stay separate (``mtta.p1`` 30 min, ``oncall.ack_all`` 15 min and
``oncall.respond_p0_p1`` 5 min all measure the same acknowledgement): a scorecard shows every reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from drills.model.policy import SlaTargets, cite
from drills.model.scorecard import CheckFamily
from drills.model.severity import Severity

ALL = frozenset(Severity)
P0 = frozenset({Severity.P0})
P1 = frozenset({Severity.P1})
HIGH = frozenset({Severity.P0, Severity.P1})
LOW = frozenset({Severity.P2, Severity.P3})


@dataclass(frozen=True, slots=True)
class Rule:
    """One check the scorer makes: what it says, where the seed says it, and which severities it binds."""

    id: str
    family: CheckFamily
    rule: str
    line: int
    severities: frozenset[Severity] = ALL
    #: Name of the :class:`SlaTargets` field holding the target; ``{sev}`` stands for p0..p3.
    target: str | None = None
    #: The seed writes ``<`` (the KPI targets): meeting the target exactly is a miss. Otherwise ``within``.
    strict: bool = False

    @property
    def cause(self) -> str:
        """What a failure of this rule is about: checks with one cause (one late acknowledgement fails five
        acknowledgement readings) are one improvement, not five."""
        return CAUSES[self.id][0]

    @property
    def owner(self) -> str:
        """Who owns the improvement when this rule fails: a role or a team, never a person (blameless)."""
        return CAUSES[self.id][1]

    @property
    def citation(self) -> str:
        return cite(self.line)

    def applies_to(self, severity: Severity) -> bool:
        return severity in self.severities

    def target_for(self, severity: Severity, targets: SlaTargets) -> timedelta | None:
        if self.target is None:
            return None
        value: timedelta = getattr(targets, self.target.format(sev=severity.value.lower()))
        return value

    def met(self, measured: timedelta, target: timedelta) -> bool:
        return measured < target if self.strict else measured <= target


D, A, T, M, R = (
    CheckFamily.DETECTION,
    CheckFamily.ACKNOWLEDGEMENT,
    CheckFamily.TRIAGE,
    CheckFamily.MITIGATION,
    CheckFamily.RESOLUTION,
)
C, E, X = CheckFamily.COMMUNICATION, CheckFamily.ESCALATION, CheckFamily.DISCIPLINE

RULES: tuple[Rule, ...] = (
    Rule("mttd", D, "Detect in under 5 minutes (first alert - fault start)", 398, ALL, "mttd", strict=True),
    Rule("mtta.p0", A, "Acknowledge a P0 in under 5 minutes (ack - alert)", 402, P0, "mtta_p0", strict=True),
    Rule("mtta.p1", A, "Acknowledge a P1 in under 30 minutes (ack - alert)", 402, P1, "mtta_p1", strict=True),
    Rule("escalation.p0_ack", A, "P0 escalation: on-call acknowledges within 5 minutes", 340, P0, "p0_ack"),
    Rule("escalation.p1_ack", A, "P1 escalation: on-call acknowledges within 30 minutes", 347, P1, "p1_ack"),
    Rule(
        "response_time",
        A,
        "Severity table: respond within the severity's response time",
        60,
        ALL,
        "response_{sev}",
    ),
    Rule(
        "oncall.respond_p0_p1",
        A,
        "On-call: respond to P0/P1 incidents within 5 minutes",
        454,
        HIGH,
        "oncall_respond_p0_p1",
    ),
    Rule(
        "oncall.ack_all", A, "On-call: acknowledge all alerts within 15 minutes", 455, ALL, "oncall_ack_all"
    ),
    Rule(
        "triage.within",
        T,
        "Triage: severity declared and incident commander assigned by minute 15",
        26,
        ALL,
        "triage",
    ),
    Rule("roles.ic", T, "Triage: assign an incident commander", 31),
    Rule("severity.accuracy", T, "Severity assessed by the matrix: declared severity matches the impact", 54),
    Rule(
        "comms.initial_alert",
        C,
        "Post the initial alert immediately (within 5 minutes)",
        195,
        ALL,
        "initial_alert",
    ),
    Rule(
        "escalation.p0_leadership",
        E,
        "P0: notify engineering leadership within 15 minutes",
        342,
        P0,
        "p0_notify_leadership",
    ),
    Rule(
        "escalation.p1_eng_lead",
        E,
        "P1: notify the engineering lead within 1 hour",
        349,
        P1,
        "p1_notify_eng_lead",
    ),
    Rule(
        "escalation.p2p3_ticket",
        E,
        "P2/P3: create a ticket in the issue tracker (no escalation required)",
        352,
        LOW,
    ),
    Rule(
        "oncall.escalate_unresolved",
        E,
        "On-call: escalate if unable to resolve within 30 minutes",
        456,
        ALL,
        "escalate_if_unresolved",
    ),
    Rule(
        "escalation.p0_executives",
        E,
        "P0: notify executive leadership if impact lasts over 1 hour",
        343,
        P0,
        "p0_notify_executives_after",
    ),
    Rule(
        "mttm.p0",
        M,
        "Mitigate a P0 in under 15 minutes (impact reduced - ack)",
        406,
        P0,
        "mttm_p0",
        strict=True,
    ),
    Rule(
        "mttm.p1", M, "Mitigate a P1 in under 1 hour (impact reduced - ack)", 406, P1, "mttm_p1", strict=True
    ),
    Rule(
        "comms.status_cadence",
        C,
        "Status updates every 15-30 minutes while the incident is open",
        212,
        ALL,
        "status_update_max",
    ),
    Rule("discipline.evidence", X, "Preserve evidence before making changes", 509),
    Rule("discipline.changes_documented", X, "Make no change without documenting it", 512),
    Rule("discipline.no_deleted_logs", X, "Never delete logs or evidence", 517),
    Rule(
        "discipline.fault_scope",
        X,
        "Change only what the fault touched: no deleting or scaling healthy, unrelated workloads",
        518,
    ),
    Rule(
        "mttr.p0", R, "Resolve a P0 in under 1 hour (resolved - fault start)", 410, P0, "mttr_p0", strict=True
    ),
    Rule(
        "mttr.p1",
        R,
        "Resolve a P1 in under 4 hours (resolved - fault start)",
        410,
        P1,
        "mttr_p1",
        strict=True,
    ),
    Rule("resolution.healthy", R, "Verify the incident is resolved: resolve only while healthy", 118),
    Rule(
        "comms.required", C, "Post every message the severity requires (internal, status page, customer)", 191
    ),
    Rule("comms.fields", C, "Fill every required field of the communication templates", 196),
    Rule(
        "postmortem.within_48h",
        R,
        "Postmortem within 48 hours, required for P0 and P1",
        146,
        HIGH,
        "postmortem_p0_p1",
    ),
)

ON_CALL = "the on-call rotation"
SERVICE_OWNER = "the service owner"
IC = "the incident commander"
COMMS_LEAD = "the communications lead"

#: Rule id -> (cause, owner). Causes group the checks one improvement fixes; owners are roles (docs/scoring.md).
CAUSES: dict[str, tuple[str, str]] = {
    "mttd": ("detection", SERVICE_OWNER),
    **dict.fromkeys(
        (
            "mtta.p0",
            "mtta.p1",
            "escalation.p0_ack",
            "escalation.p1_ack",
            "response_time",
            "oncall.respond_p0_p1",
            "oncall.ack_all",
        ),
        ("acknowledgement", ON_CALL),
    ),
    "triage.within": ("triage", IC),
    "roles.ic": ("triage", IC),
    "severity.accuracy": ("severity", IC),
    "comms.initial_alert": ("communication", COMMS_LEAD),
    "comms.status_cadence": ("communication", COMMS_LEAD),
    "comms.required": ("communication", COMMS_LEAD),
    "comms.fields": ("comms-templates", COMMS_LEAD),
    "escalation.p0_leadership": ("escalation", IC),
    "escalation.p1_eng_lead": ("escalation", IC),
    "escalation.p0_executives": ("escalation", IC),
    "escalation.p2p3_ticket": ("ticket", ON_CALL),
    "oncall.escalate_unresolved": ("escalation", ON_CALL),
    "mttm.p0": ("mitigation", SERVICE_OWNER),
    "mttm.p1": ("mitigation", SERVICE_OWNER),
    "mttr.p0": ("resolution", SERVICE_OWNER),
    "mttr.p1": ("resolution", SERVICE_OWNER),
    "resolution.healthy": ("verification", SERVICE_OWNER),
    "postmortem.within_48h": ("postmortem", IC),
    "discipline.evidence": ("evidence", SERVICE_OWNER),
    "discipline.changes_documented": ("documentation", IC),
    "discipline.no_deleted_logs": ("evidence", SERVICE_OWNER),
    "discipline.fault_scope": ("change-scope", SERVICE_OWNER),
}

RULE_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
RULE_ORDER: dict[str, int] = {r.id: i for i, r in enumerate(RULES)}

#: The SLA checks that decide a pass on their own (docs/scoring.md): MTTA, MTTM and MTTR of the true
#: severity; P2/P3 have none of those, so the severity table's response time stands in.
CORE: dict[Severity, tuple[str, ...]] = {
    # A P0 nobody told leadership about is a failed response whatever the clocks say (the seed's P0
    # escalation: "Notify engineering leadership within 15 minutes").
    Severity.P0: ("mtta.p0", "mttm.p0", "mttr.p0", "escalation.p0_leadership"),
    Severity.P1: ("mtta.p1", "mttm.p1", "mttr.p1"),
    Severity.P2: ("response_time",),
    Severity.P3: ("response_time",),
}


def rule(check_id: str) -> Rule:
    return RULE_BY_ID[check_id]
