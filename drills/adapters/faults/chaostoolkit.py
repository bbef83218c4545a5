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
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from drills.adapters.chaostoolkit import (
    JournalEvents,
    activity_label,
    load_experiment,
    merge_secrets,
    resolve_configuration,
    run_experiment,
    substitute_arguments,
    write_run_journal,
)
from drills.adapters.faults.base import Injector, PlannedChange
from drills.adapters.kube import resources as r
from drills.engine.safety import BlastRadius
from drills.errors import ChaosToolkitError, SteadyStateNotMet
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
        self._experiment = load_experiment(
            path, configuration=self.fault.configuration, secrets=self.fault.secrets
        )
        configuration, secrets = resolve_configuration(
            self._experiment,
            self.fault.configuration,
            label=path.name,
            secret_overrides=self.fault.secrets,
        )
        changes = []
        radius = BlastRadius(target_pods=max(self._target_replicas(), 1))
        for activity in self._experiment.get("method") or []:
            if "ref" in activity:
                continue
            provider = activity.get("provider") or {}
            args = substitute_arguments(provider.get("arguments") or {}, configuration, secrets)
            is_k8s = str(provider.get("module", "")).startswith("chaosk8s")
            ns = args.get("ns", "default") if is_k8s else args.get("ns")
            if activity.get("type") == "action" and is_k8s:
                radius = radius + self._radius_of(str(provider.get("func")), args, ns)
            elif ns:
                radius = radius + BlastRadius(namespaces=frozenset({str(ns)}))
            changes.append(
                PlannedChange("RUN", "ChaosToolkit", ns, str(activity.get("name")), activity_label(activity))
            )
        radius = BlastRadius(
            pods=radius.pods,
            nodes=radius.nodes,
            target_pods=max(radius.target_pods, radius.pods, 1),
            namespaces=radius.namespaces,
            cluster_scoped_selector=radius.cluster_scoped_selector,
        )
        op = {
            "op": "chaostoolkit-rollbacks",
            "experiment": str(path),
            "title": self._experiment.get("title", path.name),
            "configuration": dict(self.fault.configuration),
            "secrets": {k: dict(v) for k, v in self.fault.secrets.items()},
            "strategy": self.fault.rollback_strategy,
            "run_journal": str(self._run_journal_path()) if self._run_journal_path() else None,
            "kubeconfig": str(self.kube.kubeconfig),
            "context": self.kube.context,
            "rollbacks": len(self._experiment.get("rollbacks") or []),
        }
        return changes, radius, [op]

    def _target_replicas(self) -> int:
        dep = r.get(self.kube, "Deployment", self.workload, self.namespace)
        return int(dep["spec"].get("replicas", 1)) if dep else 0

    def _pods(self, ns: str | None, selector: str | None, field: str | None = None) -> list[dict[str, Any]]:
        items, _ = r.list_objects(self.kube, "Pod", ns, label_selector=selector, field_selector=field)
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def _deployment_pods(self, name: str, ns: str) -> int:
        dep = r.get(self.kube, "Deployment", name, ns)
        return int(dep["spec"].get("replicas", 1)) if dep else 0

    def _nodes(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        if args.get("name"):
            node = r.get(self.kube, "Node", str(args["name"]))
            return [node] if node else []
        items, _ = r.list_objects(self.kube, "Node", label_selector=args.get("label_selector"))
        count = args.get("count")
        return items[: int(count)] if count and not args.get("all") else items

    def _radius_of(self, func: str, args: Mapping[str, Any], ns: str | None) -> BlastRadius:
        """What one chaosk8s action removes or moves, read from the cluster as it is now.

        Every chaosk8s action that deletes, evicts or restarts pods counts them: a drain or a node deletion
        counts the pods on the nodes it selects; deleting a Deployment (``kill_microservice``) all its pods.
        """
        here = frozenset({str(ns)}) if ns else frozenset()
        pods = 0
        nodes = 0
        wide = bool(args.get("all_namespaces"))
        if func == "terminate_pods":
            matching = self._pods(ns, args.get("label_selector"))
            if args.get("name_pattern"):
                matching = [
                    p for p in matching if re.search(str(args["name_pattern"]), p["metadata"]["name"])
                ]
            qty = int(args.get("qty", 1))
            if args.get("all"):
                pods = len(matching)
            elif args.get("mode") == "percentage":
                pods = -(-len(matching) * qty // 100)
            else:
                pods = min(qty, len(matching)) if matching else qty
        elif func == "delete_pods":
            pods = 1 if args.get("name") else len(self._pods(ns, args.get("label_selector")))
        elif func in ("kill_microservice", "delete_deployment", "rollout_deployment") and ns:
            name = str(args.get("name", ""))
            if args.get("label_selector") and func == "delete_deployment":
                deps, _ = r.list_objects(self.kube, "Deployment", ns, label_selector=args["label_selector"])
                pods = sum(int(d["spec"].get("replicas", 1)) for d in deps)
            else:
                pods = self._deployment_pods(name, ns)
        elif func in ("scale_microservice", "scale_deployment") and ns:
            pods = max(0, self._deployment_pods(str(args.get("name")), ns) - int(args.get("replicas", 0)))
        elif func in ("drain_nodes", "delete_nodes"):
            selected = self._nodes(args)
            nodes = len(selected)
            namespaces: set[str] = set()
            for node in selected:
                on = self._pods(
                    args.get("pod_namespace"),
                    args.get("pod_label_selector"),
                    f"spec.nodeName={node['metadata']['name']}",
                )
                pods += len(on)
                namespaces |= {p["metadata"]["namespace"] for p in on}
            here = here | frozenset(namespaces)
            wide = wide or not args.get("pod_namespace")
        elif func in ("cordon_node", "uncordon_node"):
            nodes = len(self._nodes(args))
        return BlastRadius(pods=pods, nodes=nodes, namespaces=here, cluster_scoped_selector=wide)

    def _run_journal_path(self) -> Path | None:
        """Chaos Toolkit's own run journal (``chaos run``'s journal.json), beside the drill's journal."""
        journal_path = getattr(self.ctx.journal, "path", None)
        return Path(journal_path).parent / "chaostoolkit-journal.json" if journal_path else None

    def inject(self) -> datetime:
        self.plan()
        handler = JournalEvents(self.ctx.journal, self.clock, str(self._experiment.get("title", "")))
        # Rollbacks are drills' revert, played per the fault's rollback strategy at the drill's end.
        settings = {"runtime": {"rollbacks": {"strategy": "never"}}}
        experiment = json.loads(json.dumps(self._experiment))
        if self.fault.configuration:
            experiment.setdefault("configuration", {}).update(self.fault.configuration)
        if self.fault.secrets:
            experiment["secrets"] = merge_secrets(experiment.get("secrets"), self.fault.secrets)
        journal = run_experiment(
            experiment,
            settings,
            handler,
            hypothesis_strategy=self.fault.hypothesis_strategy,
            kubeconfig=self.kube.kubeconfig,
            context=self.kube.context,
            label=self.target,
            log_file=self._log_file(),
        )
        self._journal = journal
        run_journal = self._run_journal_path()
        if run_journal is not None:
            write_run_journal(journal, run_journal)
        status = journal.get("status")
        if handler.method_started_at is None:
            raise SteadyStateNotMet(
                f"Chaos Toolkit experiment {self.target} did not run its method (status {status}): "
                "its steady-state hypothesis did not hold before the fault; nothing was injected",
                hint="the cluster is not in the state the experiment expects; `drill cluster reset`, or fix "
                "the hypothesis",
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
