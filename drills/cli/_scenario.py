"""Scenario options shared by `run`, `inject` and `validate`: ``-n/--namespace`` retargets a scenario.

kubectl's ``-n`` means "this namespace instead": the scenario's target namespace, and every fault or probe
namespace that named it, become the given one. The result is validated again as a whole scenario, so the
safety rails (system namespaces) still apply to the namespace actually used.
"""

from __future__ import annotations

from typing import Any

import click

from drills.errors import SafetyError

NAMESPACE_HELP = "Run against this namespace instead of the scenario's (safety checks still apply)."


def namespace_option(fn: Any) -> Any:
    return click.option(
        "-n", "--namespace", "namespace", metavar="NAMESPACE", default=None, help=NAMESPACE_HELP
    )(fn)


def _replace(data: Any, old: str, new: str) -> Any:
    if isinstance(data, dict):
        return {k: (new if k == "namespace" and v == old else _replace(v, old, new)) for k, v in data.items()}
    if isinstance(data, list):
        return [_replace(v, old, new) for v in data]
    return data


def retarget(scenario: Any, namespace: str | None) -> Any:
    """``scenario`` with ``namespace`` in place of its target namespace (None: unchanged)."""
    if namespace is None or namespace == scenario.target.namespace:
        return scenario
    from pydantic import ValidationError

    from drills.model.scenario import Scenario

    data = _replace(scenario.model_dump(mode="python"), scenario.target.namespace, namespace)
    data["target"]["namespace"] = namespace
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        messages = "; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors())
        raise SafetyError(
            f"scenario {scenario.id} cannot run in namespace {namespace!r}: {messages}",
            hint="choose another namespace with -n, or drop -n to use the scenario's own",
        ) from e
