"""A Chaos Toolkit experiment as a drill fault: its method is the fault, its rollbacks are our revert.

Teams already write chaos experiments with chaostoolkit-kubernetes; drills runs one in-process with
chaostoolkit-lib's own entry point against the drill cluster (docs/chaostoolkit.md), with ``chaos run``'s
hypothesis and rollback strategies. Two departures from ``chaos run``, both on purpose:

- the method runs in the background: T0 is the first write the API server's audit log records after the
  method's first action started, ``fault.injected`` is written then, and the drill (detection, the page, the
  responder) goes on while a slow action or a pause does;
- rollbacks are not played by Chaos Toolkit right after the method (the responder responds to what the
  method left): they are a ``chaostoolkit-rollbacks`` operation in drills' revert ledger, played at the end
  of the drill, on abort, on SIGINT/SIGTERM and by ``drill recover``, when the fault's rollback strategy
  says ``chaos run`` would have played them.

Before anything runs, the blast radius of every chaosk8s action that removes or moves pods is read from the
cluster (pods a drain evicts, a Deployment's pods a ``kill_microservice`` deletes, replicas a scale-down
loses...), so the scenario's safety caps refuse the drill before the method starts.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from drills.adapters.chaostoolkit import (
    ExperimentRun,
    JournalEvents,
    activity_label,
    load_experiment,
    merge_secrets,
    resolve_configuration,
    substitute_arguments,
    write_run_journal,
)
from drills.adapters.faults.base import Injector, PlannedChange
from drills.adapters.kube import resources as r
from drills.adapters.kube.audit import AuditRecord, AuditTail
from drills.adapters.kube.identities import actor_kind_for
from drills.engine.safety import BlastRadius
from drills.errors import ChaosToolkitError, SteadyStateNotMet
from drills.model.events import ActorKind
from drills.model.revert import RevertOp
from drills.model.scenario import ChaosToolkitFault

log = logging.getLogger(__name__)

#: chaosk8s functions on nodes (no ``ns`` argument).
NODE_FUNCS = frozenset({"drain_nodes", "delete_nodes", "cordon_node", "uncordon_node", "create_node"})

#: How long a revert waits for a method still running (a drain, a pause) before it plays the rollbacks.
METHOD_GRACE = 120.0


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
            func = str(provider.get("func"))
            # chaosk8s' namespaced functions default to `default`; node functions have no namespace
            ns = args.get("ns", "default") if is_k8s and func not in NODE_FUNCS else args.get("ns")
            if activity.get("type") == "action" and is_k8s:
                radius = radius + self._radius_of(func, args, ns)
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

    def revert_ops(self) -> list[RevertOp]:
        # The drill's journal (and so the run journal's place) may come after the plan (preflight).
        self.plan()
        for op in self._ops:
            op["run_journal"] = op.get("run_journal") or (
                str(self._run_journal_path()) if self._run_journal_path() else None
            )
        return super().revert_ops()

    def inject(self) -> datetime:
        """Start the experiment in the background; T0 once its method first changes the cluster.

        T0 is the API server's time of the first write after the method's first action started (the audit
        log's record of it), or that action's start where drills cannot read the audit log. The rest of the
        method (a slow drain, pauses) goes on while the drill does: health and alerts during it belong to it.
        """
        self.plan()
        handler = JournalEvents(self.ctx.journal, self.clock, str(self._experiment.get("title", "")))
        # Rollbacks are drills' revert, played per the fault's rollback strategy at the drill's end.
        settings = {"runtime": {"rollbacks": {"strategy": "never"}}}
        experiment = json.loads(json.dumps(self._experiment))
        if self.fault.configuration:
            experiment.setdefault("configuration", {}).update(self.fault.configuration)
        if self.fault.secrets:
            experiment["secrets"] = merge_secrets(experiment.get("secrets"), self.fault.secrets)
        tail = AuditTail(self.ctx.audit_log) if self.ctx.audit_log is not None else None
        self._run = ExperimentRun(
            experiment,
            settings,
            handler,
            hypothesis_strategy=self.fault.hypothesis_strategy,
            kubeconfig=self.kube.kubeconfig,
            context=self.kube.context,
            label=self.target,
            log_file=self._log_file(),
        ).start()
        handler.acting.wait()
        started = handler.first_action_started_at
        t0 = self._first_write(tail, started, handler) if started is not None else None
        if t0 is None or self._run.error is not None:
            # Nothing changed the cluster before the run ended: what happened is the whole answer.
            self._run.join()
            self._check_outcome(handler)
        return t0 or started or handler.method_started_at or self.clock.now()

    def _first_write(
        self, tail: AuditTail | None, started: datetime, handler: JournalEvents
    ) -> datetime | None:
        """When the API server received the first write after ``started`` (None if the run ended first)."""
        if tail is None:
            # No audit log to say when the change landed: it has once the first action completed.
            handler.acted.wait()
            return started
        since = started - timedelta(seconds=1)  # the API server's and drills' clocks, to the second
        while True:
            ended = handler.done.is_set()
            for rec in tail.poll():
                if rec.ok and rec.is_write and rec.received >= since and self._by_us(rec):
                    return rec.received
            if ended:
                return None
            handler.done.wait(0.05)

    @staticmethod
    def _by_us(rec: AuditRecord) -> bool:
        kind = actor_kind_for(rec.user, rec.user_agent, None)
        return kind in (ActorKind.DRILLS, ActorKind.UNKNOWN)

    def _check_outcome(self, handler: JournalEvents) -> None:
        assert self._run is not None
        if self._run.error is not None:
            raise self._run.error
        journal = self._run.journal or {}
        self._keep_run_journal()
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

    def _keep_run_journal(self) -> None:
        run_journal = self._run_journal_path()
        if self._run is not None and self._run.journal is not None and run_journal is not None:
            write_run_journal(self._run.journal, run_journal)

    def stop(self) -> None:
        """The method ends before the rollbacks: chaoslib cannot be stopped mid-activity, so wait for it."""
        run = getattr(self, "_run", None)
        if run is None:
            return
        if not run.join(METHOD_GRACE):
            log.warning(
                "the Chaos Toolkit method of %s still runs after %.0fs; reverting anyway",
                self.target,
                METHOD_GRACE,
            )
        self._keep_run_journal()

    def _log_file(self) -> Path | None:
        """chaoslib's log goes beside the drill's journal (``chaostoolkit.log``), when there is one."""
        journal_path = getattr(self.ctx.journal, "path", None)
        return Path(journal_path).parent / "chaostoolkit.log" if journal_path else None

    def effect(self) -> str | None:
        run = getattr(self, "_run", None)
        if run is None:
            return None
        done = run.handler.activities
        ok = sum(1 for a in done if a["status"] == "succeeded")
        if run.running:
            return f"experiment method running: {ok} of {len(done)} activities succeeded so far"
        status = (run.journal or {}).get("status")
        return f"experiment method ran: {ok} of {len(done)} activities succeeded (status {status})"
