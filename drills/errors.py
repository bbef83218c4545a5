"""The errors drills raises, one tree, so callers catch what they can act on.

Every message says what went wrong *and what to do next*; the CLI prints it without a traceback.
Wrappers around external systems (Kubernetes, kwokctl, Chaos Toolkit, Prometheus, file system) translate
their own errors into this tree and chain the cause (``raise ClusterError(...) from e``).

A drill that breaches its SLAs is *not* an error: it is a result (a failing scorecard).

    DrillError
    ├── UsageError                 the command line or a config value is wrong
    ├── ScenarioError              a scenario, policy, plan or responder file is invalid (carries every problem)
    ├── JournalError               a journal cannot be read or written
    │   └── NoActiveDrill          a responder command with no drill running
    ├── SafetyError                drills refuses: context, namespace, blast radius, preflight
    ├── EnvironmentProblem         a tool or binary drills needs is missing or broken
    │   └── BuildError             a Go module failed to build (names the module and the log)
    ├── ClusterError               the cluster refused or failed a request
    │   ├── ClusterUnreachable     nothing answers at the API server
    │   ├── Forbidden              the API server said 403 to this identity
    │   └── NotFound               the object is not there
    ├── FaultError                 a fault could not be planned, injected, confirmed or reverted
    │   └── RevertError            a revert failed: the ledger keeps it pending for `drill recover`
    ├── ChaosToolkitError          a Chaos Toolkit experiment is invalid or failed
    │   └── SteadyStateNotMet      its hypothesis did not hold before the fault (exit 7)
    ├── MonitoringError            Prometheus / Alertmanager could not be started or reached
    └── WebhookError               an inbound webhook was refused (token, signature, size, body)
"""

from __future__ import annotations

from dataclasses import dataclass


class DrillError(Exception):
    """Base of every error drills raises on purpose."""

    #: Process exit code the CLI uses for this kind of error.
    exit_code: int = 4

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  -> {self.hint}"
        return self.message


class UsageError(DrillError):
    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one input file, located as ``file:line: field.path: message``."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ScenarioError(DrillError):
    exit_code = 3

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(lines or "invalid input", hint=None)


class JournalError(DrillError):
    pass


class NoActiveDrill(JournalError):
    exit_code = 2


class SafetyError(DrillError):
    exit_code = 5


class EnvironmentProblem(DrillError):
    pass


class BuildError(EnvironmentProblem):
    def __init__(self, message: str, *, module: str, log_path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.module = module
        self.log_path = log_path


class ClusterError(DrillError):
    pass


class ClusterUnreachable(ClusterError):
    pass


class Forbidden(ClusterError):
    pass


class NotFound(ClusterError):
    pass


class FaultError(DrillError):
    pass


class RevertError(FaultError):
    pass


class ChaosToolkitError(DrillError):
    pass


class SteadyStateNotMet(ChaosToolkitError):
    """A Chaos Toolkit experiment's steady-state hypothesis did not hold before the fault: nothing was
    injected, the drill did not happen. Its own exit code, as it is neither bad input nor drills failing."""

    exit_code = 7


class MonitoringError(DrillError):
    pass


class WebhookError(DrillError):
    """An inbound webhook was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


__all__ = [
    "BuildError",
    "ChaosToolkitError",
    "ClusterError",
    "ClusterUnreachable",
    "DrillError",
    "EnvironmentProblem",
    "FaultError",
    "Forbidden",
    "JournalError",
    "MonitoringError",
    "NoActiveDrill",
    "NotFound",
    "Problem",
    "RevertError",
    "SafetyError",
    "ScenarioError",
    "SteadyStateNotMet",
    "UsageError",
    "WebhookError",
]
