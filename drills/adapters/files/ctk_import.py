"""`drill ctk import`: wrap a Chaos Toolkit experiment a team already has into a drills scenario.

A team's experiment says what it breaks (its chaosk8s actions and their arguments) but not what a drill
needs around it: the target workload, what healthy looks like, what a responder is expected to do. This
module reads those off the experiment where it can (targets, a static blast radius, a suggested mitigation)
and writes the rest as defaults to review. The configuration keys the experiment reads from the environment
become the fault's ``configuration:`` entries with their env defaults, so the scenario says what it needs.
The result is validated as ``drill validate`` would, before anyone runs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drills.adapters.chaostoolkit import read_experiment
from drills.adapters.files.scenarios import parse_scenario
from drills.errors import Problem, ScenarioError

#: chaosk8s actions and the mitigation a responder would reach for, when the system does not heal alone.
MITIGATIONS: dict[str, str] = {
    "terminate_pods": "delete-pods",
    "delete_pods": "delete-pods",
    "scale_deployment": "scale",
    "scale_microservice": "scale",
    "kill_microservice": "restore-backup",
    "delete_deployment": "restore-backup",
    "drain_nodes": "uncordon",
    "cordon_node": "uncordon",
    "delete_nodes": "scale",
    "remove_service_endpoint": "set-selector",
    "rollout_deployment": "rollback",
}
#: Actions a Deployment recovers from on its own (a replaced pod): the scenario is a self-healing chaos test.
SELF_HEALING = frozenset({"terminate_pods", "delete_pods", "rollout_deployment"})


@dataclass
class ImportedExperiment:
    """What ``drill ctk import`` found, and the scenario it wrote."""

    scenario_yaml: str
    targets: list[str] = field(default_factory=list)
    blast_radius: list[str] = field(default_factory=list)
    mitigation: str = "scale"
    configuration: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-")
    return slug or "chaostoolkit-experiment"


def _radius(func: str, args: Mapping[str, Any], ns: str) -> str:
    """What one chaosk8s action removes or moves, as far as its arguments say (no cluster read)."""
    where = f"in {ns}"
    if func == "terminate_pods":
        if args.get("all"):
            return f"{func}: every pod matching {args.get('label_selector') or 'anything'} {where}"
        unit = "%" if args.get("mode") == "percentage" else " pod(s)"
        return (
            f"{func}: {args.get('qty', 1)}{unit} matching {args.get('label_selector') or 'anything'} {where}"
        )
    if func == "delete_pods":
        return (
            f"{func}: {args.get('name') or 'every pod matching ' + str(args.get('label_selector'))} {where}"
        )
    if func in ("kill_microservice", "delete_deployment", "rollout_deployment"):
        return f"{func}: every pod of Deployment {args.get('name') or args.get('label_selector')} {where}"
    if func in ("scale_deployment", "scale_microservice"):
        return f"{func}: Deployment {args.get('name')} {where} down to {args.get('replicas', 0)} replica(s)"
    if func in ("drain_nodes", "delete_nodes"):
        nodes = args.get("name") or args.get("label_selector") or "any"
        count = f" (at most {args['count']})" if args.get("count") else ""
        return f"{func}: every pod on node(s) {nodes}{count}, in every namespace they run in"
    if func in ("cordon_node", "uncordon_node"):
        return f"{func}: node(s) {args.get('name') or args.get('label_selector')}; no pod moves"
    return f"{func}: not known to drills' estimate (0 pods)"


def _workload(args: Mapping[str, Any]) -> str | None:
    if args.get("name") and not str(args["name"]).startswith("${"):
        return str(args["name"])
    selector = str(args.get("label_selector") or "")
    match = re.search(r"(?:^|,)\s*(?:app|app\.kubernetes\.io/name|name)\s*=\s*([a-z0-9-]+)", selector)
    return match.group(1) if match else None


def _env_entries(values: Mapping[str, Any]) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value.get("type") == "env":
            entry: dict[str, Any] = {"type": "env", "key": str(value.get("key"))}
            if "default" in value:
                entry["default"] = value["default"]
            entries[str(key)] = entry
    return entries


def import_experiment(experiment: Path, *, output: Path | None = None) -> ImportedExperiment:
    """The scenario wrapping ``experiment`` (to be written at ``output``, or shown), and what was found."""
    data = read_experiment(experiment)
    base = (output.parent if output is not None else Path.cwd()).resolve()
    targets: list[str] = []
    radius: list[str] = []
    namespace = "production"
    workload: str | None = None
    funcs: list[str] = []
    for activity in data.get("method") or []:
        if not isinstance(activity, Mapping) or "ref" in activity:
            continue
        provider = activity.get("provider") or {}
        args = provider.get("arguments") or {}
        if not str(provider.get("module", "")).startswith("chaosk8s") or not isinstance(args, Mapping):
            continue
        ns = str(args.get("ns") or args.get("pod_namespace") or "default")
        if activity.get("type") != "action":
            continue
        func = str(provider.get("func"))
        funcs.append(func)
        if args.get("ns") and not str(args["ns"]).startswith("${"):  # node actions have no namespace
            namespace = str(args["ns"])
        workload = workload or _workload(args)
        targets.append(f"{activity.get('name')}: {provider.get('module')}.{func} {dict(args)} in {ns}")
        radius.append(_radius(func, args, ns))
    mitigation = next((MITIGATIONS[f] for f in funcs if f in MITIGATIONS), "scale")
    self_healing = bool(funcs) and all(f in SELF_HEALING for f in funcs)
    if self_healing:
        mitigation = "scale"
    configuration = _env_entries(dict(data.get("configuration") or {}))
    secrets = {
        scope: entries
        for scope, values in dict(data.get("secrets") or {}).items()
        if isinstance(values, Mapping) and (entries := _env_entries(values))
    }
    fault: dict[str, Any] = {
        "kind": "chaostoolkit",
        "experiment": os.path.relpath(experiment.resolve(), base),
    }
    if configuration:
        fault["configuration"] = configuration
    if secrets:
        fault["secrets"] = secrets
    scenario: dict[str, Any] = {
        "id": _slug(str(data.get("title") or experiment.stem)),
        "title": str(data.get("title") or experiment.stem)[:200],
        "description": str(data.get("description") or "")[:2000],
        "category": "chaos",
        "difficulty": "beginner",
        "tags": ["chaos-test", "chaostoolkit"] + (["self-healing"] if self_healing else []),
        "impact": {
            "users_affected_pct": 0.5,
            "service_status": "minor",
            "data_loss_risk": "none",
            "revenue_impact": "low",
        },
        "target": {"namespace": namespace, "workload": workload or "app"},
        "faults": [fault],
        "steady_state": {
            "healthy_for": "30s",
            "probes": [{"probe": "deployment-available", "name": workload or "app"}],
        },
        "expected_response": {"mitigations": [mitigation], "roles": ["ic"]},
        "self_healing": self_healing,
        "time_budget": "10m",
    }
    header = "\n".join(
        [
            f"# Imported from {experiment.name} by `drill ctk import`; review impact, steady_state and",
            "# expected_response: they are guesses (the experiment does not say them).",
            *(f"# target: {t}" for t in targets),
            *(f"# blast radius: {r}" for r in radius),
            f"# suggested mitigation: {mitigation}"
            + (" (the system should heal alone)" if self_healing else ""),
        ]
    )
    text = header + "\n" + yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True, width=110)
    problems: list[Problem] = []
    try:
        parse_scenario(text, file=str(output or "<imported scenario>"), base_dir=base)
    except ScenarioError as e:
        problems = e.problems
    return ImportedExperiment(text, targets, radius, mitigation, configuration, problems)
