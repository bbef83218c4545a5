"""Installing the monthly chaos test: a cron entry on this machine, or a Kubernetes CronJob manifest.

Either way the schedule itself stays in drills: cron only wakes ``drill schedule run`` on the schedule's
weekday, and that command decides whether this month's test is due (first clear weekday of the month, no
blackout, not already run) and picks the unannounced scenario from a fresh seed it logs. So blackouts,
catch-up after a machine was off, and "never the same twice in a row" live in one place, tested, instead of
in cron syntax, which cannot say "first Tuesday" anyway (day-of-month and day-of-week fields are OR-ed).

The crontab entry is a marked block, replaced in place on reinstall and never touching other lines. When the
``crontab`` program is missing, the block is written to a file and the message says how to install it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time as _time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from drills.adapters.store.paths import state_dir
from drills.engine.schedule import describe_blackout
from drills.errors import EnvironmentProblem
from drills.model.durations import format_duration
from drills.model.schedule import MonthlySchedule

BEGIN = "# BEGIN drills monthly chaos test"
END = "# END drills monthly chaos test"
CRON_FILE = "drills-monthly.cron"
CRONJOB_NAME = "drills-monthly-chaos-test"
#: Environment the cron'd command needs to find the same state, reports and scenarios as the installer.
_CARRIED_ENV = ("DRILLS_STATE", "DRILLS_REPORTS", "DRILLS_SCENARIOS", "DRILLS_FIXTURES", "DRILLS_CACHE")


def drill_executable() -> list[str]:
    """The ``drill`` command of this installation (absolute, so cron's bare PATH finds it)."""
    beside = Path(sys.executable).parent / "drill"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("drill")
    if found:
        return [found]
    return [sys.executable, "-c", "from drills.cli import main; main()"]


def local_timezone_name() -> str | None:
    """This machine's IANA time zone name, when it can be known."""
    tz = os.environ.get("TZ")
    if tz:
        return tz.lstrip(":")
    try:
        link = Path("/etc/localtime").resolve()
    except OSError:
        link = None
    if link is not None and "zoneinfo" in link.parts:
        return "/".join(link.parts[link.parts.index("zoneinfo") + 1 :])
    try:
        return Path("/etc/timezone").read_text(encoding="utf-8").strip() or None
    except OSError:
        return "UTC" if _time.timezone == 0 and not _time.daylight else None


def same_zone(a: str, b: str | None) -> bool:
    utc = {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "GMT", "Etc/GMT", "Universal"}
    return b is not None and (a == b or (a in utc and b in utc))


def run_command(config: Path, extra: list[str] | None = None) -> list[str]:
    return [*drill_executable(), "schedule", "run", "--config", str(config.resolve()), *(extra or [])]


def cron_fields(schedule: MonthlySchedule, machine_tz: str | None) -> tuple[str, str]:
    """(cron time fields, why). Exact when the machine keeps the schedule's time zone, hourly otherwise."""
    if same_zone(schedule.timezone, machine_tz):
        return (
            f"{schedule.at.minute} {schedule.at.hour} * * {schedule.weekday.cron}",
            f"every {schedule.weekday.name.lower()} at {schedule.at:%H:%M}",
        )
    return (
        f"{schedule.at.minute} * * * *",
        f"hourly, because this machine's time zone ({machine_tz or 'unknown'}) is not the schedule's "
        f"({schedule.timezone}); `drill schedule run` only acts on the due day and hour",
    )


def _escape_cron(text: str) -> str:
    return text.replace("%", "\\%")


def render_cron(
    schedule: MonthlySchedule, config: Path, *, log: Path | None = None, machine_tz: str | None = None
) -> str:
    """The crontab block (with its markers) that wakes ``drill schedule run``."""
    machine_tz = machine_tz if machine_tz is not None else local_timezone_name()
    fields, why = cron_fields(schedule, machine_tz)
    log = log or state_dir() / "monthly.log"
    env = " ".join(f"{k}={shlex.quote(v)}" for k in _CARRIED_ENV if (v := os.environ.get(k)))
    command = " ".join(shlex.quote(a) for a in run_command(config))
    prefix = f"{env} " if env else ""
    line = f"{fields} cd {shlex.quote(str(Path.cwd()))} && {prefix}{command} >> {shlex.quote(str(log))} 2>&1"
    lines = [
        BEGIN + " (managed by `drill schedule --install`; edit the schedule file, not this block)",
        f"# {_describe(schedule)}",
        f"# cron wakes it {why}.",
        _escape_cron(line),
        END,
    ]
    return "\n".join(lines) + "\n"


def _describe(schedule: MonthlySchedule) -> str:
    text = (
        f"{schedule.week.value} {schedule.weekday.name.lower()} of the month at {schedule.at:%H:%M} "
        f"{schedule.timezone}"
    )
    if schedule.blackouts:
        text += "; never during: " + "; ".join(describe_blackout(b) for b in schedule.blackouts)
    return text


def render_cronjob(
    schedule: MonthlySchedule,
    schedule_text: str,
    *,
    namespace: str = "default",
    image: str = "drills:latest",
    duration: timedelta | None = None,
) -> str:
    """A ConfigMap (the schedule), a PersistentVolumeClaim (history and reports) and the CronJob."""
    labels = {"app.kubernetes.io/name": "drills", "app.kubernetes.io/component": "monthly-chaos-test"}
    deadline = int(((duration or timedelta(minutes=45)) * 2).total_seconds())
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "drills-schedule", "namespace": namespace, "labels": labels},
        "data": {"schedule.yaml": schedule_text},
    }
    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "drills-state", "namespace": namespace, "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cronjob: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": CRONJOB_NAME,
            "namespace": namespace,
            "labels": labels,
            "annotations": {"drills.io/schedule": _describe(schedule)},
        },
        "spec": {
            # Wakes weekly on the schedule's weekday; `drill schedule run` decides if this is the month's day.
            "schedule": f"{schedule.at.minute} {schedule.at.hour} * * {schedule.weekday.cron}",
            "timeZone": schedule.timezone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": deadline,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "drill",
                                    "image": image,
                                    "args": ["schedule", "run", "--config", "/etc/drills/schedule.yaml"],
                                    "env": [
                                        {"name": "DRILLS_STATE", "value": "/var/lib/drills/state"},
                                        {"name": "DRILLS_REPORTS", "value": "/var/lib/drills/reports"},
                                    ],
                                    "volumeMounts": [
                                        {"name": "schedule", "mountPath": "/etc/drills", "readOnly": True},
                                        {"name": "state", "mountPath": "/var/lib/drills"},
                                    ],
                                    "resources": {
                                        "requests": {"cpu": "100m", "memory": "256Mi"},
                                        "limits": {"memory": "1Gi"},
                                    },
                                }
                            ],
                            "volumes": [
                                {"name": "schedule", "configMap": {"name": "drills-schedule"}},
                                {"name": "state", "persistentVolumeClaim": {"claimName": "drills-state"}},
                            ],
                        },
                    },
                },
            },
        },
    }
    header = (
        f"# The monthly chaos test as a Kubernetes CronJob: {_describe(schedule)}.\n"
        f"# Test run time budget (for activeDeadlineSeconds): {format_duration(duration)}.\n"
    )
    return header + yaml.safe_dump_all([config_map, claim, cronjob], sort_keys=False, width=100)


@dataclass(frozen=True)
class Installed:
    method: Literal["crontab", "file"]
    path: Path | None
    message: str


def _without_block(text: str) -> str:
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith(BEGIN):
            inside = True
            continue
        if inside and line.startswith(END):
            inside = False
            continue
        if not inside:
            out.append(line)
    return "\n".join(out).rstrip("\n") + ("\n" if out else "")


def install_cron(block: str, *, crontab: str | None = None, fallback_dir: Path | None = None) -> Installed:
    """Put the block in the user's crontab (replacing an earlier one), or in a file without crontab."""
    binary = crontab or shutil.which("crontab")
    if binary is None:
        directory = fallback_dir or state_dir() / "cron"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CRON_FILE
        path.write_text(block, encoding="utf-8")
        return Installed(
            "file",
            path,
            f"no `crontab` program on this machine: wrote the entry to {path}. Install it with "
            f"`crontab {path}` (that replaces the whole crontab) or merge it into yours; for /etc/cron.d add "
            "a user name after the time fields.",
        )
    current = subprocess.run([binary, "-l"], capture_output=True, text=True, check=False)
    if current.returncode != 0 and "no crontab" not in (current.stderr or "").lower():
        raise EnvironmentProblem(
            f"`crontab -l` failed: {(current.stderr or '').strip() or current.returncode}",
            hint="check that cron is installed and you may use it (/etc/cron.allow)",
        )
    kept = _without_block(current.stdout if current.returncode == 0 else "")
    new = (kept + ("\n" if kept and not kept.endswith("\n") else "") + block) if kept.strip() else block
    done = subprocess.run([binary, "-"], input=new, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EnvironmentProblem(
            f"`crontab -` refused the new crontab: {(done.stderr or '').strip()}",
            hint="run `drill schedule` to see the entry and install it by hand",
        )
    return Installed("crontab", None, f"installed in the crontab of user {_user()} (see `crontab -l`)")


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER", "?")


__all__ = [
    "BEGIN",
    "CRONJOB_NAME",
    "END",
    "Installed",
    "cron_fields",
    "drill_executable",
    "install_cron",
    "local_timezone_name",
    "render_cron",
    "render_cronjob",
    "run_command",
    "same_zone",
]
