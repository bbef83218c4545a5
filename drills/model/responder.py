"""Responder files: what a scripted responder (the bot) does in a drill, and when.

Drills run unattended (CI, demos, benchmarks, the monthly chaos test) with a bot in the responder's seat. A
responder file is YAML (``fixtures/responders/*.yaml``) validated by these models, loaded with the same
``file:line: field: message`` errors as scenarios. Each step names what the bot does (acknowledge, declare a
severity, take a role, post a message, perform the scenario's mitigation with real kubectl...) and when:
``offset`` after the page (or after the fault with ``relative_to: fault``), moved by up to ``jitter`` either
way with a seeded random generator, so a run is reproducible from its ``--seed``.

This module does no I/O; the bot that executes a file is ``drills.runner.bot``.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from drills.model.durations import Duration
from drills.model.events import Role
from drills.model.scenario import Mitigation
from drills.model.severity import Severity

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class SeverityCall(StrEnum):
    """A severity relative to the scenario's truth, so one profile works for every scenario."""

    TRUE = "true"  # the scenario's true severity
    UNDERSTATED = "understated"  # one level less severe (P3 becomes P2: still wrong)
    OVERSTATED = "overstated"  # one level more severe (P0 becomes P1: still wrong)


class RelativeTo(StrEnum):
    PAGE = "page"
    FAULT = "fault"


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: Duration = Field(default=timedelta(0), description="When, after the page (or fault).")
    jitter: Duration = Field(default=timedelta(0), description="Move the step by up to this much either way.")


class AckStep(_Step):
    step: Literal["ack"]


class DeclareStep(_Step):
    step: Literal["declare"]
    severity: Severity | SeverityCall = Field(
        default=SeverityCall.TRUE, description="P0-P3, or true / understated / overstated."
    )


class RoleStep(_Step):
    step: Literal["role"]
    role: Role
    person: str | None = Field(default=None, max_length=100, description="Default: the bot's name.")


class CommsStep(_Step):
    step: Literal["comms"]
    template: str = Field(min_length=1, description="One of the seed's templates, e.g. initial_alert.")
    complete: bool = Field(
        default=True, description="Fill every field; false leaves the placeholders the drill cannot fill."
    )


class EscalateStep(_Step):
    step: Literal["escalate"]
    whom: str = Field(
        default="auto",
        min_length=1,
        description="engineering-leadership, executives, engineering-lead, sme...; auto: whom the seed "
        "names for the true severity (a ticket for P2/P3).",
    )


class TicketStep(_Step):
    step: Literal["ticket"]
    ref: str = ""


class NoteStep(_Step):
    step: Literal["note"]
    text: str = Field(min_length=1, max_length=20000)


class DetectStep(_Step):
    step: Literal["detect"]
    how: str = "noticed by the responder"


class MitigateStep(_Step):
    step: Literal["mitigate"]
    mitigation: Mitigation | None = Field(
        default=None, description="Default: the scenario's first expected mitigation."
    )
    announce: bool = Field(default=False, description="Also record `drill mitigated` once the commands ran.")


class MitigatedStep(_Step):
    step: Literal["mitigated"]
    summary: str = ""


class ResolveStep(_Step):
    step: Literal["resolve"]
    root_cause: str | None = Field(default=None, description="Default: the scenario's root cause.")
    wait: Literal["lasting", "healthy", "none"] = Field(
        default="lasting",
        description="Before resolving, wait until health has held for the scenario's healthy window "
        "(lasting), until the service is healthy right now (healthy), or not at all (none).",
    )


class HintStep(_Step):
    step: Literal["hint"]


class KubectlStep(_Step):
    step: Literal["kubectl"]
    args: list[str] = Field(min_length=1, description="kubectl arguments, e.g. [get, pods, -n, production].")


class EvidenceStep(_Step):
    """Read the logs and describe the workload before changing anything (the seed's "preserve evidence")."""

    step: Literal["evidence"]


Step = Annotated[
    AckStep
    | DeclareStep
    | RoleStep
    | CommsStep
    | EscalateStep
    | TicketStep
    | NoteStep
    | DetectStep
    | MitigateStep
    | MitigatedStep
    | ResolveStep
    | HintStep
    | KubectlStep
    | EvidenceStep,
    Field(discriminator="step"),
]

STEP_KINDS: tuple[str, ...] = (
    "ack", "declare", "role", "comms", "escalate", "ticket", "note", "detect", "mitigate", "mitigated",
    "resolve", "hint", "kubectl", "evidence",
)  # fmt: skip


class ResponderProfile(BaseModel):
    """A responder file. See docs/running.md (The scripted responder)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        default="bot", pattern=_NAME, max_length=40, description="The bot's name in the journal."
    )
    description: str = ""
    relative_to: RelativeTo = Field(
        default=RelativeTo.PAGE, description="Offsets count from the page (default) or from the fault."
    )
    steps: list[Step] = Field(min_length=1)


def severity_for(call: Severity | SeverityCall, true: Severity) -> Severity:
    """The severity a step declares, given the scenario's true severity."""
    if isinstance(call, Severity):
        return call
    if call == SeverityCall.TRUE:
        return true
    order = [Severity.P0, Severity.P1, Severity.P2, Severity.P3]
    i = order.index(true)
    if call == SeverityCall.UNDERSTATED:
        return order[i + 1] if i + 1 < len(order) else order[i - 1]
    return order[i - 1] if i > 0 else order[i + 1]
