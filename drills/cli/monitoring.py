"""`drill monitoring ...`: the cluster's detection chain (Prometheus, Alertmanager, the state-metrics exporter).

Thin: the work is in drills.adapters.monitoring.stack. `drill run --detector monitoring` starts the stack by itself;
these commands are for looking at it, starting it ahead of a drill, and checking a team's rules.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
import yaml

from drills.adapters.clusters import facade as clusters
from drills.adapters.files.scenarios import find_scenario, load_scenario
from drills.adapters.monitoring import stack as monitoring
from drills.cli._app import (
    ExitCode,
    cluster_option,
    echo,
    emit,
    exits,
    handle_errors,
    output_option,
    plain,
    print_table,
    say,
)
from drills.cli.completion import complete_scenarios

_name_option = cluster_option(dest="name", help="Which drill cluster's stack.")


@click.group(name="monitoring")
def monitoring_group() -> None:
    """Prometheus and Alertmanager for a drill cluster: `up`, `down`, `status`, `alerts`, `rules`."""


@exits()
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
    say("monitoring of cluster ", (name, "bold"), " is up")
    say(f"  Prometheus    {stack.prometheus_url}")
    say(f"  Alertmanager  {stack.alertmanager_url}")
    say(f"  drills webhook receiver (during drills)  {stack.webhook_url}")


@exits()
@monitoring_group.command()
@_name_option
@handle_errors
def down(name: str) -> None:
    """Stop the stack: no process is left (`drill cluster down` does this too)."""
    stopped = monitoring.stop_monitoring(name)
    say(f"stopped {', '.join(stopped)}" if stopped else f"no monitoring runs for cluster {name}")


@exits()
@monitoring_group.command()
@_name_option
@output_option
@handle_errors
def status(name: str, output: str) -> None:
    """Each process of the stack: PID, port, alive and ready."""
    stack = monitoring.load_stack(name)
    health = monitoring.stack_health(stack) if stack is not None else []
    healthy = bool(health) and all(h.alive and h.ready for h in health)
    if output != "table":
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
        emit(data, output)
    elif stack is None:
        say(f"no monitoring runs for cluster {name}: `drill monitoring up --cluster {name}` starts it")
    else:
        print_table(
            ("component", "pid", "port", "alive", "ready"),
            [(h.component, str(h.pid), str(h.port), _yes(h.alive), _yes(h.ready)) for h in health],
            title=f"monitoring of cluster {name}",
        )
        say(f"Prometheus {stack.prometheus_url}   Alertmanager {stack.alertmanager_url}")
    if not healthy:
        raise SystemExit(ExitCode.ENVIRONMENT)


def _yes(flag: bool) -> object:
    return "yes" if flag else plain("no", "red")


@exits()
@monitoring_group.command()
@_name_option
@output_option
@handle_errors
def alerts(name: str, output: str) -> None:
    """What Prometheus is evaluating (pending, firing) and what Alertmanager holds, right now."""
    stack = monitoring.load_stack(name)
    if stack is None:
        say(f"no monitoring runs for cluster {name}", err=True)
        raise SystemExit(ExitCode.ENVIRONMENT)
    found = monitoring.prometheus_alerts(stack)
    if output != "table":
        emit(found, output)
        return
    rows = []
    for a in found:
        labels = {k: v for k, v in a.get("labels", {}).items() if k not in ("alertname", "severity")}
        rows.append(
            (
                a.get("labels", {}).get("alertname", ""),
                a.get("state", ""),
                str(a.get("activeAt", "")),
                " ".join(f"{k}={v}" for k, v in sorted(labels.items())),
            )
        )
    print_table(("alert", "state", "since", "labels"), rows, title="alerts")


@exits()
@monitoring_group.command()
@click.option(
    "--scenario",
    "scenario_ref",
    default=None,
    shell_complete=complete_scenarios,
    help="Render with this scenario's detection overrides.",
)
@click.option(
    "--file",
    "rules_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="A rules file of your own (default: fixtures/prometheus/rules.yaml).",
)
@click.option("--check", is_flag=True, help="Validate the rendered rules with promtool.")
@click.option("--yaml", "as_yaml", is_flag=True, hidden=True, help="Same as -o yaml.")
@output_option
@handle_errors
def rules(scenario_ref: str | None, rules_file: Path | None, check: bool, as_yaml: bool, output: str) -> None:
    """The alert rules a drill runs with: each alert, its `for:` and severity."""
    source = monitoring.load_rules(rules_file)
    settings = monitoring.MonitoringSettings()
    if scenario_ref:
        rendered = monitoring.rules_for_scenario(
            load_scenario(find_scenario(scenario_ref)), settings, rules=source
        )
    else:
        rendered = monitoring.render_rules(source, settings)
    if as_yaml or output == "yaml":
        echo(yaml.safe_dump(rendered, sort_keys=False, width=200), nl=False)
    elif output == "json":
        emit(rendered, output)
    else:
        print_table(
            ("alert", "for", "severity"), list(monitoring.describe_rules(rendered)), title="alert rules"
        )
    if check:
        with tempfile.TemporaryDirectory(prefix="drills-rules-") as tmp:
            path = Path(tmp) / "rules.yaml"
            path.write_text(yaml.safe_dump(rendered, sort_keys=False), encoding="utf-8")
            report = monitoring.check_rules_file(path)
        say(report.replace(str(path), "rules"), err=True)
