"""`drill monitoring ...`: the cluster's detection chain (Prometheus, Alertmanager, the state-metrics exporter).

Thin: the work is in drills.adapters.monitoring.stack. `drill run --detector monitoring` starts the stack by itself;
these commands are for looking at it, starting it ahead of a drill, and checking a team's rules.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
import yaml
from rich.table import Table

from drills.adapters.clusters import facade as clusters
from drills.adapters.files.scenarios import find_scenario, load_scenario
from drills.adapters.monitoring import stack as monitoring
from drills.cli._app import ExitCode, cli, console, err_console, handle_errors

_name_option = click.option(
    "--name", default=clusters.DEFAULT_NAME, show_default=True, help="Which drill cluster's stack."
)


@cli.group(name="monitoring")
def monitoring_group() -> None:
    """Prometheus and Alertmanager for a drill cluster: `up`, `down`, `status`, `alerts`, `rules`."""


@monitoring_group.command()
@_name_option
@click.option(
    "--state-metrics",
    metavar="HOST:PORT",
    default=None,
    help="Scrape this kube-state-metrics (e.g. a port-forward to kind's) instead of drills' exporter.",
)
@click.option(
    "--pagerduty",
    is_flag=True,
    help="Also route alerts to PagerDuty from Alertmanager (routing key from DRILLS_PAGERDUTY_ROUTING_KEY).",
)
@click.option("--slack", is_flag=True, help="Also route alerts to Slack (URL from DRILLS_SLACK_WEBHOOK_URL).")
@click.option("--slack-channel", default=None, help="Slack channel for Alertmanager's messages.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@handle_errors
def up(
    name: str, state_metrics: str | None, pagerduty: bool, slack: bool, slack_channel: str | None, quiet: bool
) -> None:
    """Start the stack for the cluster (safe to repeat) and wait until it scrapes the cluster."""
    handle = clusters.get(name)
    settings = monitoring.MonitoringSettings(
        alertmanager_pagerduty=pagerduty, alertmanager_slack=slack, slack_channel=slack_channel
    )
    stack = monitoring.start_monitoring(
        handle, settings=settings, state_metrics=state_metrics, progress=not quiet
    )
    out = console()
    out.print(f"monitoring of cluster [bold]{name}[/] is up")
    out.print(f"  Prometheus    {stack.prometheus_url}", markup=False)
    out.print(f"  Alertmanager  {stack.alertmanager_url}", markup=False)
    out.print(f"  drills webhook receiver (during drills)  {stack.webhook_url}", markup=False)


@monitoring_group.command()
@_name_option
@handle_errors
def down(name: str) -> None:
    """Stop the stack: no process is left (`drill cluster down` does this too)."""
    stopped = monitoring.stop_monitoring(name)
    console().print(f"stopped {', '.join(stopped)}" if stopped else f"no monitoring runs for cluster {name}")


@monitoring_group.command()
@_name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def status(name: str, as_json: bool) -> None:
    """Each process of the stack: PID, port, alive and ready."""
    stack = monitoring.load_stack(name)
    health = monitoring.stack_health(stack) if stack is not None else []
    healthy = bool(health) and all(h.alive and h.ready for h in health)
    if as_json:
        data = {
            "cluster": name,
            "running": stack is not None,
            "healthy": healthy,
            "prometheus": stack.prometheus_url if stack else None,
            "alertmanager": stack.alertmanager_url if stack else None,
            "webhook": stack.webhook_url if stack else None,
            "state_metrics": stack.state_metrics if stack else None,
            "processes": [h.__dict__ for h in health],
        }
        click.echo(json.dumps(data, indent=2))
    elif stack is None:
        console().print(
            f"no monitoring runs for cluster {name}: `drill monitoring up --name {name}` starts it"
        )
    else:
        table = Table(title=f"monitoring of cluster {name}")
        for col in ("component", "pid", "port", "alive", "ready"):
            table.add_column(col)
        for h in health:
            table.add_row(h.component, str(h.pid), str(h.port), _yes(h.alive), _yes(h.ready))
        out = console()
        out.print(table)
        out.print(f"Prometheus {stack.prometheus_url}   Alertmanager {stack.alertmanager_url}", markup=False)
    if not healthy:
        raise SystemExit(ExitCode.ENVIRONMENT)


def _yes(flag: bool) -> str:
    return "yes" if flag else "[red]no[/]"


@monitoring_group.command()
@_name_option
@handle_errors
def alerts(name: str) -> None:
    """What Prometheus is evaluating (pending, firing) and what Alertmanager holds, right now."""
    stack = monitoring.load_stack(name)
    if stack is None:
        err_console().print(f"no monitoring runs for cluster {name}")
        raise SystemExit(ExitCode.ENVIRONMENT)
    table = Table(title="alerts")
    for col in ("alert", "state", "since", "labels"):
        table.add_column(col)
    for a in monitoring.prometheus_alerts(stack):
        labels = {k: v for k, v in a.get("labels", {}).items() if k not in ("alertname", "severity")}
        table.add_row(
            a["labels"].get("alertname", ""),
            a.get("state", ""),
            str(a.get("activeAt", "")),
            " ".join(f"{k}={v}" for k, v in sorted(labels.items())),
        )
    console().print(table)


@monitoring_group.command()
@click.option(
    "--scenario", "scenario_ref", default=None, help="Render with this scenario's detection overrides."
)
@click.option(
    "--file",
    "rules_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="A rules file of your own (default: fixtures/prometheus/rules.yaml).",
)
@click.option("--check", is_flag=True, help="Validate the rendered rules with promtool.")
@click.option("--yaml", "as_yaml", is_flag=True, help="Print the rendered rule file.")
@handle_errors
def rules(scenario_ref: str | None, rules_file: Path | None, check: bool, as_yaml: bool) -> None:
    """The alert rules a drill runs with: each alert, its `for:` and severity."""
    source = monitoring.load_rules(rules_file)
    settings = monitoring.MonitoringSettings()
    if scenario_ref:
        rendered = monitoring.rules_for_scenario(
            load_scenario(find_scenario(scenario_ref)), settings, rules=source
        )
    else:
        rendered = monitoring.render_rules(source, settings)
    if as_yaml:
        click.echo(yaml.safe_dump(rendered, sort_keys=False, width=200), nl=False)
    else:
        table = Table(title="alert rules")
        for col in ("alert", "for", "severity"):
            table.add_column(col)
        for row in monitoring.describe_rules(rendered):
            table.add_row(*row)
        console().print(table)
    if check:
        with tempfile.TemporaryDirectory(prefix="drills-rules-") as tmp:
            path = Path(tmp) / "rules.yaml"
            path.write_text(yaml.safe_dump(rendered, sort_keys=False), encoding="utf-8")
            report = monitoring.check_rules_file(path)
        err_console().print(report.replace(str(path), "rules"), markup=False)
