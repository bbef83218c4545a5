"""The one wrapper around chaostoolkit-lib: load and validate experiments, run them, play their rollbacks.

Nothing else in drills imports chaoslib. chaosk8s (the Kubernetes extension) reads the cluster's location
from process-wide state (``KUBECONFIG``, the client's default configuration), so every run goes through
:func:`kube_env`, which points it at the drill cluster and puts the defaults back afterwards. Chaos Toolkit's
run events become ``chaostoolkit.event`` journal events (:class:`JournalEvents`) and its failures
:class:`ChaosToolkitError`, with the cause chained.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from chaoslib.exceptions import ChaosException
from chaoslib.run import EventHandlerRegistry, RunEventHandler, Runner, apply_rollbacks
from chaoslib.types import Strategy
from kubernetes import client as k8s_client
from kubernetes.config import kube_config

from drills.errors import ChaosToolkitError
from drills.model.events import ChaosToolkitEvent, EventSink, Source
from drills.model.revert import ChaosToolkitRollbacks
from drills.timing import SYSTEM_CLOCK, Clock

# chaosk8s reads the kubeconfig location from process-wide state: one experiment at a time.
_ENV_LOCK = threading.RLock()


def load_experiment(path: Path) -> dict[str, Any]:
    """Read and validate an experiment (JSON or YAML); ChaosToolkitError naming the file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ChaosToolkitError(
            f"cannot read Chaos Toolkit experiment {path}: {e}",
            hint="the fault's `experiment:` is relative to the scenario file",
        ) from e
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ChaosToolkitError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}"
        ) from e
    if not isinstance(data, dict):
        raise ChaosToolkitError(f"{path}: an experiment is a mapping with title, method, ...")
    from chaoslib.experiment import ensure_experiment_is_valid

    try:
        ensure_experiment_is_valid(data)
    except ChaosException as e:
        raise ChaosToolkitError(f"{path}: invalid Chaos Toolkit experiment: {e}") from e
    return data


@contextlib.contextmanager
def kube_env(kubeconfig: str | Path, context: str | None) -> Iterator[None]:
    """Point chaosk8s at the drill cluster, and put the process-wide client defaults back afterwards."""
    keys = ("KUBECONFIG", "KUBERNETES_CONTEXT")
    with _ENV_LOCK:
        saved_env = {k: os.environ.get(k) for k in keys}
        saved_location = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        saved_default = getattr(k8s_client.Configuration, "_default", None)
        saved_verify = k8s_client.Configuration.__dict__.get("verify_ssl")
        os.environ["KUBECONFIG"] = str(kubeconfig)
        if context:
            os.environ["KUBERNETES_CONTEXT"] = context
        else:
            os.environ.pop("KUBERNETES_CONTEXT", None)
        # chaosk8s calls load_kube_config() without a file: the default location is read at import time
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
        try:
            yield
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved_location
            k8s_client.Configuration._default = saved_default
            if saved_verify is None:
                with contextlib.suppress(AttributeError):
                    delattr(k8s_client.Configuration, "verify_ssl")
            else:
                k8s_client.Configuration.verify_ssl = saved_verify


def activity_label(activity: Mapping[str, Any]) -> str:
    provider = activity.get("provider") or {}
    target = (
        f"{provider.get('module', '')}.{provider.get('func', '')}"
        if provider.get("module")
        else provider.get("type", "?")
    )
    args = provider.get("arguments") or {}
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return f"{activity.get('type', 'action')} {target}({shown})"


class JournalEvents(RunEventHandler):  # type: ignore[misc]
    """Chaos Toolkit run events -> ``chaostoolkit.event`` journal events (names and statuses only)."""

    def __init__(self, sink: EventSink | None, clock: Clock, title: str) -> None:
        self.sink = sink
        self.clock = clock
        self.title = title
        self.method_started_at: datetime | None = None
        self.first_action_at: datetime | None = None
        self.interrupted_by: str | None = None
        self.failed: list[str] = []

    def _emit(self, phase: str, **detail: Any) -> None:
        if self.sink is not None:
            self.sink.append(
                ChaosToolkitEvent(
                    at=self.clock.now(),
                    source=Source.SYSTEM,
                    actor="chaostoolkit",
                    phase=phase,
                    detail={"experiment": self.title, **detail},
                )
            )

    def started(self, experiment: Any, journal: Any) -> None:
        self._emit("started")

    def hypothesis_before_completed(self, experiment: Any, state: Any, journal: Any) -> None:
        self._emit("hypothesis-before", met=bool((state or {}).get("steady_state_met")))

    def start_method(self, experiment: Any) -> None:
        self.method_started_at = self.clock.now()
        self._emit("method-started")

    def activity_completed(self, activity: Any, run: Any) -> None:
        status = (run or {}).get("status")
        if activity.get("type") == "action" and self.first_action_at is None and self.method_started_at:
            self.first_action_at = self.clock.now()
        if status not in (None, "succeeded"):
            self.failed.append(
                f"{activity.get('name')}: {status}: {(run or {}).get('exception') and 'error'}"
            )
        self._emit("activity", name=activity.get("name"), kind=activity.get("type"), status=status)

    def method_completed(self, experiment: Any, state: Any = None) -> None:
        self._emit("method-completed")

    def start_rollbacks(self, experiment: Any) -> None:
        self._emit("rollbacks-started")

    def rollbacks_completed(self, experiment: Any, journal: Any) -> None:
        self._emit("rollbacks-completed")

    def interrupted(self, experiment: Any, journal: Any) -> None:
        self.interrupted_by = "interrupted"
        self._emit("interrupted")

    def signal_exit(self) -> None:
        self.interrupted_by = "signal"
        self._emit("interrupted", by="signal")

    def finish(self, journal: Any) -> None:
        self._emit("finished", status=(journal or {}).get("status"), deviated=(journal or {}).get("deviated"))


def run_rollbacks(
    op: ChaosToolkitRollbacks, *, sink: EventSink | None = None, clock: Clock = SYSTEM_CLOCK
) -> str:
    """Play an experiment's rollbacks (the ``chaostoolkit-rollbacks`` revert operation)."""
    path = Path(op.experiment)
    experiment = load_experiment(path)
    rollbacks = experiment.get("rollbacks") or []
    if not rollbacks:
        return f"Chaos Toolkit experiment {path.name}: no rollbacks to play"
    configuration = dict(experiment.get("configuration") or {})
    configuration.update(op.configuration)
    handler = JournalEvents(sink, clock, str(op.title or experiment.get("title", "")))
    registry = EventHandlerRegistry()
    registry.register(handler)
    runs: list[Any] = []
    with kube_env(op.kubeconfig, op.context):
        try:
            handler.start_rollbacks(experiment)
            apply_rollbacks(experiment, configuration, {}, None, None, registry, runs)
            handler.rollbacks_completed(experiment, {})
        except ChaosException as e:
            raise ChaosToolkitError(f"Chaos Toolkit rollbacks of {path.name} failed: {e}") from e
    failed = [x for x in runs if x.get("status") != "succeeded"]
    if failed:
        names = ", ".join(str((x.get("activity") or {}).get("name")) for x in failed)
        raise ChaosToolkitError(
            f"Chaos Toolkit rollbacks of {path.name} failed: {names}",
            hint="the revert stays pending in the ledger; fix the cause and run `drill recover`",
        )
    return f"Chaos Toolkit experiment {path.name}: {len(runs)} rollbacks played"


def run_experiment(
    experiment: dict[str, Any],
    settings: dict[str, Any],
    handler: JournalEvents,
    *,
    kubeconfig: str | Path,
    context: str | None,
    label: str,
) -> dict[str, Any]:
    """Run an experiment's hypothesis and method against the drill cluster; chaoslib's journal back."""
    with kube_env(kubeconfig, context):
        try:
            with Runner(Strategy.BEFORE_METHOD) as runner:
                runner.register_event_handler(handler)
                journal: dict[str, Any] = runner.run(experiment, settings=settings)
        except ChaosException as e:
            raise ChaosToolkitError(f"Chaos Toolkit experiment {label} failed: {e}") from e
    return journal
