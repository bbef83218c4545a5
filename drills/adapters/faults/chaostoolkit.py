"""A Chaos Toolkit experiment as a drill fault: its method is the fault, its rollbacks are our revert.

Teams already write chaos experiments with chaostoolkit-kubernetes; drills runs one in-process with
chaostoolkit-lib against the drill cluster (``KUBECONFIG``/``KUBERNETES_CONTEXT`` for chaosk8s, which reads
them), the experiment's own steady-state hypothesis as a gate before its method. Two departures from
``chaos run``, both on purpose:

- rollbacks are *never* played by Chaos Toolkit itself (its default skips them when interrupted, and a drill
  must always undo): the runtime rollback strategy is ``never``, and the rollbacks are a
  ``chaostoolkit-rollbacks`` operation in drills' revert ledger, played by drills at the end of the drill,
  on abort, on SIGINT/SIGTERM, and by ``drill recover`` after a crash;
- Chaos Toolkit's run events (started, hypothesis, each activity, method, rollbacks) become
  ``chaostoolkit.event`` journal events, and its failures become :class:`ChaosToolkitError`.

The blast radius of arbitrary providers cannot be known; drills bounds what it can read from chaosk8s
arguments (``ns``, ``qty``, ``all``, ``replicas``) and refuses experiments that name a system namespace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from drills.adapters.chaostoolkit import JournalEvents, activity_label, load_experiment, run_experiment
from drills.adapters.faults.base import Injector, PlannedChange
from drills.adapters.kube import resources as r
from drills.engine.safety import BlastRadius
from drills.errors import ChaosToolkitError
from drills.model.scenario import ChaosToolkitFault


class ChaosToolkit(Injector):
    summary = "a Chaos Toolkit experiment's method; its rollbacks are the revert"
    kind = "chaostoolkit"
    fault: ChaosToolkitFault

    @property
    def target(self) -> str:
        return f"ChaosToolkit/{Path(self.fault.experiment).name}"

    def _experiment_path(self) -> Path:
        p = Path(self.fault.experiment)
        if not p.is_absolute():
            p = (self.ctx.scenario_dir or Path.cwd()) / p
        return p.resolve()

    def _plan(self) -> tuple[list[PlannedChange], BlastRadius, list[dict[str, Any]]]:
        path = self._experiment_path()
        self._experiment = load_experiment(path)
        changes = []
        pods = 0
        namespaces: set[str] = set()
        cluster_wide = False
        for activity in self._experiment.get("method") or []:
            args = ((activity.get("provider") or {}).get("arguments")) or {}
            ns = (
                args.get("ns", "default")
                if "chaosk8s" in str((activity.get("provider") or {}).get("module"))
                else args.get("ns")
            )
            if ns:
                namespaces.add(str(ns))
            if activity.get("type") == "action":
                pods += self._pods_touched(activity, args, ns)
            changes.append(
                PlannedChange("RUN", "ChaosToolkit", ns, str(activity.get("name")), activity_label(activity))
            )
            cluster_wide = cluster_wide or bool(args.get("all_namespaces"))
        radius = BlastRadius(
            pods=pods,
            target_pods=max(self._target_replicas(), pods, 1),
            namespaces=frozenset(namespaces),
            cluster_scoped_selector=cluster_wide,
        )
        op = {
            "op": "chaostoolkit-rollbacks",
            "experiment": str(path),
            "title": self._experiment.get("title", path.name),
            "configuration": dict(self.fault.configuration),
            "kubeconfig": str(self.kube.kubeconfig),
            "context": self.kube.context,
            "rollbacks": len(self._experiment.get("rollbacks") or []),
        }
        return changes, radius, [op]

    def _target_replicas(self) -> int:
        dep = r.get(self.kube, "Deployment", self.workload, self.namespace)
        return int(dep["spec"].get("replicas", 1)) if dep else 0

    def _pods_touched(self, activity: Mapping[str, Any], args: Mapping[str, Any], ns: str | None) -> int:
        func = str((activity.get("provider") or {}).get("func"))
        if func == "terminate_pods":
            if args.get("all") and ns:
                items, _ = r.list_objects(self.kube, "Pod", ns, label_selector=args.get("label_selector"))
                return len(items)
            return int(args.get("qty", 1))
        if func == "scale_deployment" and ns:
            dep = r.get(self.kube, "Deployment", str(args.get("name")), ns)
            return max(0, int(dep["spec"].get("replicas", 1)) - int(args.get("replicas", 0))) if dep else 0
        return 0

    def inject(self) -> datetime:
        self.plan()
        handler = JournalEvents(self.ctx.journal, self.clock, str(self._experiment.get("title", "")))
        settings = {"runtime": {"rollbacks": {"strategy": "never"}}}
        experiment = json.loads(json.dumps(self._experiment))
        if self.fault.configuration:
            experiment.setdefault("configuration", {}).update(self.fault.configuration)
        journal = run_experiment(
            experiment,
            settings,
            handler,
            kubeconfig=self.kube.kubeconfig,
            context=self.kube.context,
            label=self.target,
            log_file=self._log_file(),
        )
        self._journal = journal
        status = journal.get("status")
        if handler.method_started_at is None:
            raise ChaosToolkitError(
                f"Chaos Toolkit experiment {self.target} did not run its method (status {status}): "
                "its steady-state hypothesis did not hold before the fault",
                hint="the cluster is not in the state the experiment expects; check the drill's preflight",
            )
        if handler.interrupted_by or status in ("interrupted", "aborted", "failed") or handler.failed:
            raise ChaosToolkitError(
                f"Chaos Toolkit experiment {self.target} ended {status}"
                + (f" ({'; '.join(handler.failed)})" if handler.failed else ""),
                hint="its rollbacks are run by drills' revert",
            )
        return handler.first_action_at or handler.method_started_at

    def _log_file(self) -> Path | None:
        """chaoslib's log goes beside the drill's journal (``chaostoolkit.log``), when there is one."""
        journal_path = getattr(self.ctx.journal, "path", None)
        return Path(journal_path).parent / "chaostoolkit.log" if journal_path else None

    def effect(self) -> str | None:
        journal = getattr(self, "_journal", None)
        if not journal:
            return None
        runs = journal.get("run") or []
        ok = [x for x in runs if x.get("status") == "succeeded"]
        status = journal.get("status")
        return f"experiment method ran: {len(ok)}/{len(runs)} activities succeeded (status {status})"
