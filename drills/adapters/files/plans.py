"""DR plan files: validated with line numbers, with every reference the plan makes checked before it runs.

The model (``drills.model.plan``) checks what a plan says about itself; a plan is only runnable when the
things it points at are there too: each entry's scenario file (and that it is valid), each bot responder
profile, each backup a step restores from, and no two entries that may run at the same time aimed at the
same namespace (two failures in one namespace at once tell nobody anything about either runbook). Every
problem comes back at once as ``file:line: field: message``, like scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drills.adapters.files.scenarios import (
    Loaded,
    confinement_problem,
    find_scenario,
    load_located,
    load_model,
    load_scenario,
)
from drills.adapters.store.paths import fixtures_dir, repo_root, scenarios_dir
from drills.errors import Problem, ScenarioError, UsageError
from drills.model.plan import DrPlan, PlanEntry, ProbeCheck
from drills.model.responder import ResponderProfile
from drills.model.scenario import SYSTEM_NAMESPACES, NamespaceLostFault, Scenario

PLAN_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ResolvedEntry:
    entry: PlanEntry
    scenario_path: Path
    scenario: Scenario
    responder_file: Path | None
    backups: dict[str, Path]  # step name -> backup path


@dataclass(frozen=True)
class LoadedPlan:
    path: Path
    plan: DrPlan
    entries: dict[str, ResolvedEntry]

    def resolved(self, entry_id: str) -> ResolvedEntry:
        return self.entries[entry_id]


def plans_dir() -> Path:
    return scenarios_dir() / "plans"


def find_plan(name_or_path: str | Path) -> Path:
    """A plan file from a path, or a plan's file name/id in ``scenarios/plans/``."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    for suffix in ("", *PLAN_SUFFIXES):
        candidate = plans_dir() / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    if plans_dir().is_dir():
        for f in sorted(plans_dir().iterdir()):
            if f.suffix in PLAN_SUFFIXES:
                try:
                    if load_model(f, DrPlan).id == str(name_or_path):
                        return f
                except ScenarioError:
                    continue
    raise UsageError(
        f"no plan {str(name_or_path)!r} (not a file, and nothing by that name in {plans_dir()})",
        hint="give the path of a plan file, e.g. scenarios/plans/quarterly-dr.yaml",
    )


def _candidates(text: str, base: Path) -> list[Path]:
    p = Path(text).expanduser()
    if p.is_absolute():
        return [p]
    return [base / p, repo_root() / p, Path.cwd() / p]


def resolve_path(text: str, base: Path) -> Path | None:
    for c in _candidates(text, base):
        if c.exists():
            return c
    return None


def _scenario(entry: PlanEntry, base: Path) -> Path:
    direct = base / entry.scenario
    if direct.is_file():
        return direct
    return find_scenario(entry.scenario)


def _responder_file(responder: str, base: Path) -> Path | None:
    if not responder.startswith("bot:"):
        return None
    text = responder[4:]
    found = resolve_path(text, base)
    if found is None:
        for suffix in ("", ".yaml", ".yml"):
            c = fixtures_dir() / "responders" / f"{text}{suffix}"
            if c.is_file():
                return c
    return found


def _namespace(scenario: Scenario) -> str:
    return scenario.target.namespace


def check_plan(loaded: Loaded[DrPlan], path: Path) -> tuple[dict[str, ResolvedEntry], list[Problem]]:
    """Resolve what the plan refers to; every problem located in the plan file."""
    plan = loaded.model
    base = path.parent
    problems: list[Problem] = []
    resolved: dict[str, ResolvedEntry] = {}
    for i, e in enumerate(plan.entries):
        try:
            spath = _scenario(e, base)
        except UsageError as err:
            message = f"{err.message}; {err.hint}" if err.hint else err.message
            problems.append(loaded.problem(("entries", i, "scenario"), message))
            continue
        try:
            scenario = load_scenario(spath)
        except ScenarioError as err:
            first = err.problems[0] if err.problems else None
            more = f" (and {len(err.problems) - 1} more)" if len(err.problems) > 1 else ""
            problems.append(
                loaded.problem(("entries", i, "scenario"), f"scenario {spath} is invalid: {first}{more}")
            )
            continue
        responder_file = _responder_file(e.responder, base)
        if e.responder.startswith("bot:"):
            if responder_file is None:
                problems.append(
                    loaded.problem(
                        ("entries", i, "responder"),
                        f"no responder profile {e.responder[4:]!r} (relative to the plan, the repository, "
                        "or in fixtures/responders/)",
                    )
                )
            else:
                try:
                    load_model(responder_file, ResponderProfile)
                except ScenarioError as err:
                    problems.append(
                        loaded.problem(
                            ("entries", i, "responder"),
                            f"responder profile {responder_file} is invalid: {err.problems[0]}",
                        )
                    )
        backups: dict[str, Path] = {}
        for j, step in enumerate(e.runbook):
            if isinstance(step.check, ProbeCheck):
                problem = _probe_namespace_problem(step.check, scenario)
                if problem:
                    problems.append(
                        loaded.problem(("entries", i, "runbook", j, "check", "probe", "namespace"), problem)
                    )
            if step.backup is None:
                continue
            found = resolve_path(step.backup, base)
            confined = confinement_problem(step.backup, _candidates(step.backup, base), base, "backup")
            if confined:
                problems.append(loaded.problem(("entries", i, "runbook", j, "backup"), confined))
            elif found is None:
                problems.append(
                    loaded.problem(
                        ("entries", i, "runbook", j, "backup"),
                        f"no backup at {step.backup} (relative to the plan or the repository)",
                    )
                )
            else:
                backups[step.name] = found
        resolved[e.id] = ResolvedEntry(e, spath, scenario, responder_file, backups)
    problems.extend(_overlaps(loaded, resolved))
    return resolved, problems


def _probe_namespace_problem(check: ProbeCheck, scenario: Scenario) -> str | None:
    """A runbook step's probe watches its entry's scenario namespace, never a system namespace."""
    namespace = getattr(check.probe, "namespace", None)
    home = scenario.target.namespace
    if namespace is None or namespace == home:
        return None
    what = "a system namespace" if namespace in SYSTEM_NAMESPACES else f"not the namespace of {scenario.id}"
    return f"{namespace!r} is {what}: a step's probe watches the entry's scenario namespace ({home})"


def _overlaps(loaded: Loaded[DrPlan], resolved: dict[str, ResolvedEntry]) -> list[Problem]:
    plan = loaded.model
    problems: list[Problem] = []
    ids = [e.id for e in plan.entries]
    for bi, b in enumerate(ids):
        for a in ids[:bi]:
            if a not in resolved or b not in resolved or not plan.may_overlap(a, b):
                continue
            sa, sb = resolved[a].scenario, resolved[b].scenario
            if _namespace(sa) != _namespace(sb):
                continue
            lost = any(isinstance(f, NamespaceLostFault) for f in (*sa.faults, *sb.faults))
            same_workload = sa.target.workload == sb.target.workload
            if lost or same_workload:
                what = "one of them deletes it" if lost else f"both break {sa.target.workload}"
                problems.append(
                    loaded.problem(
                        ("entries", bi, "id"),
                        f"entries {a!r} and {b!r} may run at the same time in namespace {_namespace(sa)} "
                        f"and {what}: add `after: {a}` to {b!r}",
                    )
                )
    return problems


def load_plan(path: Path) -> LoadedPlan:
    """Load a plan and everything it refers to; raises ScenarioError with every problem."""
    path = Path(path)
    loaded = load_located(path, DrPlan)
    resolved, problems = check_plan(loaded, path)
    if problems:
        raise ScenarioError(problems)
    return LoadedPlan(path, loaded.model, resolved)


__all__ = ["LoadedPlan", "ResolvedEntry", "check_plan", "find_plan", "load_plan", "plans_dir", "resolve_path"]
