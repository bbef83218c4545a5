"""`drill validate`, `drill schema` and `drill list`: commands for people writing and choosing scenarios."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel
from rich.table import Table

from drills.adapters.files.scenarios import load_model, load_scenarios, scenario_files
from drills.adapters.store.paths import scenarios_dir
from drills.cli._app import ExitCode, cli, console, err_console, handle_errors
from drills.errors import Problem, ScenarioError, UsageError
from drills.model.events import journal_json_schema
from drills.model.policy import Policy
from drills.model.scenario import Scenario
from drills.model.scorecard import Scorecard

_JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"


def _model_schema(model: type[BaseModel], title: str, description: str) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        schema = model.model_json_schema()
        return {"$schema": _JSON_SCHEMA, **schema, "title": title, "description": description}

    return build


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "scenario": _model_schema(Scenario, "drills scenario", "A drill scenario file. See docs/scenarios.md."),
    "journal": journal_json_schema,
    "scorecard": _model_schema(Scorecard, "drills scorecard", "A drill's scorecard (`drill score --json`)."),
    "policy": _model_schema(
        Policy, "drills policy", "SLA overrides, scoring weights and grades (--policy FILE)."
    ),
}


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["scenario", "policy"]),
    default="scenario",
    show_default=True,
    help="What the files are.",
)
@handle_errors
def validate(paths: tuple[Path, ...], kind: str) -> None:
    """Check scenario (or policy) files; print every problem as file:line: field: message.

    PATHS are files or directories (their *.yaml and *.yml files); default: the scenarios directory.
    """
    targets = list(paths) or [scenarios_dir()]
    problems: list[Problem]
    if kind == "scenario":
        valid, problems = load_scenarios(targets)
        count = len(valid)
    else:
        files, problems = scenario_files(targets)
        count = 0
        for f in files:
            try:
                load_model(f, Policy)
                count += 1
            except ScenarioError as e:
                problems.extend(e.problems)
    for p in problems:
        click.echo(str(p))
    noun = kind if count == 1 else f"{kind}s"
    summary = f"{count} {noun} valid, {len(problems)} problem{'' if len(problems) == 1 else 's'}"
    click.echo(summary)
    sys.exit(ExitCode.INVALID_INPUT if problems else ExitCode.OK)


@cli.command()
@click.argument("what", type=click.Choice(sorted(SCHEMAS)))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file, not stdout."
)
@handle_errors
def schema(what: str, out: Path | None) -> None:
    """Print the JSON Schema of a scenario, journal event, scorecard or policy (for editors and tools)."""
    text = json.dumps(SCHEMAS[what](), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror}", hint="check the directory exists") from e
    err_console().print(f"wrote the {what} schema to {out}", markup=False)


def scenario_summary(path: Path, s: Scenario) -> dict[str, Any]:
    return {
        "id": s.id,
        "title": s.title,
        "category": s.category,
        "difficulty": s.difficulty.value,
        "true_severity": s.true_severity.value,
        "tags": list(s.tags),
        "faults": [f.kind for f in s.faults],
        "mitigations": [m.value for m in s.expected_response.mitigations],
        "self_healing": s.self_healing,
        "path": str(path),
    }


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--tag", "tags", multiple=True, help="Only scenarios with this tag (repeatable: all must match)."
)
@click.option("--category", help="Only scenarios of this category.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Scenario directory (default: $DRILLS_SCENARIOS or ./scenarios of the checkout).",
)
@handle_errors
def list_scenarios(
    as_json: bool, tags: tuple[str, ...], category: str | None, directory: Path | None
) -> None:
    """List the scenarios: id, title, category, difficulty, true severity, faults and mitigations."""
    found, problems = load_scenarios([directory or scenarios_dir()])
    chosen = [
        (p, s)
        for p, s in found
        if all(t in s.tags for t in tags) and (category is None or s.category == category)
    ]
    chosen.sort(key=lambda ps: (ps[1].category, ps[1].true_severity.rank, ps[1].id))
    if as_json:
        click.echo(json.dumps([scenario_summary(p, s) for p, s in chosen], indent=2))
    else:
        table = Table(title=f"{len(chosen)} scenarios", title_justify="left")
        table.add_column("id", no_wrap=True)
        table.add_column("title", ratio=1, overflow="fold")
        table.add_column("category", no_wrap=True)
        table.add_column("difficulty", no_wrap=True)
        table.add_column("sev", no_wrap=True)
        table.add_column("faults", overflow="fold")
        table.add_column("mitigations", overflow="fold")
        for _, s in chosen:
            table.add_row(
                s.id,
                s.title,
                s.category,
                s.difficulty.value,
                s.true_severity.value,
                ", ".join(f.kind for f in s.faults),
                ", ".join(m.value for m in s.expected_response.mitigations),
            )
        console().print(table)
    if problems:
        err_console().print(
            f"{len(problems)} problem(s) in the scenario files were skipped; `drill validate` shows them",
            markup=False,
        )
