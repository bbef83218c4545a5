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
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ChaosException
from chaoslib.run import EventHandlerRegistry, RunEventHandler, apply_rollbacks
from chaoslib.types import Strategy
from kubernetes import client as k8s_client
from kubernetes.config import kube_config

from drills.adapters.core_yaml import core_safe_load
from drills.adapters.reading import UnreadableFile, read_bounded
from drills.adapters.store import paths
from drills.engine.redact import scrub, secrets_from_env
from drills.errors import ChaosToolkitError
from drills.model.events import ChaosToolkitEvent, EventSink, Source
from drills.model.revert import ChaosToolkitRollbacks
from drills.timing import SYSTEM_CLOCK, Clock

# chaosk8s reads the kubeconfig location from process-wide state: one experiment at a time.
_ENV_LOCK = threading.RLock()


def parse_experiment(text: str, path: Path) -> Any:
    """An experiment's data: JSON, or YAML read as YAML 1.2 (``yes`` stays text, as ``chaos run`` would not
    have it, but as the YAML the experiment's author's tools show; PyYAML's 1.1 would make it True)."""
    if path.suffix == ".json":
        return json.loads(text)
    return core_safe_load(text)


def read_experiment(path: Path) -> dict[str, Any]:
    """Read an experiment (JSON or YAML 1.2) without validating it; ChaosToolkitError naming the file."""
    try:
        text = read_bounded(path).decode("utf-8")
    except (UnreadableFile, UnicodeDecodeError) as e:
        raise ChaosToolkitError(
            f"cannot read Chaos Toolkit experiment {path}: {e.reason if isinstance(e, UnreadableFile) else e}",
            hint="the fault's `experiment:` is relative to the scenario file",
        ) from e
    try:
        data = parse_experiment(text, path)
    except Exception as e:  # PyYAML's constructors raise more than YAMLError on explicit tags
        raise ChaosToolkitError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}"
        ) from e
    if not isinstance(data, dict):
        raise ChaosToolkitError(f"{path}: an experiment is a mapping with title, method, ...")
    return data


def load_experiment(
    path: Path,
    *,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read and validate an experiment (every problem of :func:`experiment_problems`, the scenario's
    configuration and secrets merged in first); ChaosToolkitError naming the file and each problem otherwise."""
    data = read_experiment(path)
    problems = experiment_problems(data, configuration=configuration, secrets=secrets)
    if problems:
        raise ChaosToolkitError(
            f"{path}: invalid Chaos Toolkit experiment:\n" + "\n".join(f"  {p}" for p in problems),
            hint="`drill validate` on the scenario lists the same problems",
        )
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
        #: When the method's first action was handed to its provider (after its ``pauses.before``).
        self.first_action_started_at: datetime | None = None
        self.interrupted_by: str | None = None
        self.failed: list[str] = []
        self.activities: list[dict[str, Any]] = []
        #: Set when the method's first action starts, or when the run ends without one.
        self.acting = threading.Event()
        #: Set when the method's first action has completed (or the run ended without one).
        self.acted = threading.Event()
        self.done = threading.Event()

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
        self._emit("started", **versions())

    def hypothesis_before_completed(self, experiment: Any, state: Any, journal: Any) -> None:
        self._emit("hypothesis-before", met=bool((state or {}).get("steady_state_met")))

    def hypothesis_after_completed(self, experiment: Any, state: Any, journal: Any) -> None:
        self._emit("hypothesis-after", met=bool((state or {}).get("steady_state_met")))

    def start_method(self, experiment: Any) -> None:
        self.method_started_at = self.clock.now()
        self._emit("method-started")

    def start_activity(self, activity: Any) -> None:
        if (
            activity.get("type") == "action"
            and self.method_started_at
            and self.first_action_started_at is None
        ):
            self.first_action_started_at = self.clock.now()
            self.acting.set()

    def activity_completed(self, activity: Any, run: Any) -> None:
        status = (run or {}).get("status")
        if activity.get("type") == "action" and self.first_action_at is None and self.method_started_at:
            self.first_action_at = self.clock.now()
            self.acted.set()
        if status not in (None, "succeeded"):
            self.failed.append(
                f"{activity.get('name')}: {status}: {(run or {}).get('exception') and 'error'}"
            )
        run = run or {}
        self.activities.append(
            {"name": activity.get("name"), "status": status, "duration": run.get("duration")}
        )
        self._emit(
            "activity",
            name=activity.get("name"),
            kind=activity.get("type"),
            status=status,
            start=run.get("start"),
            end=run.get("end"),
            duration=run.get("duration"),
            provider=activity_label(activity),
        )

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
        ok = sum(1 for a in self.activities if a["status"] == "succeeded")
        self._emit(
            "finished",
            status=(journal or {}).get("status"),
            deviated=(journal or {}).get("deviated"),
            summary=f"{ok} of {len(self.activities)} activities succeeded",
        )
        self.acting.set()
        self.acted.set()


def merge_secrets(experiment: Any, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The experiment's secrets with the scenario's merged over them, scope by scope."""
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in dict(experiment or {}).items()}
    for scope, values in dict(overrides or {}).items():
        base = merged.get(scope)
        merged[scope] = {**(base if isinstance(base, dict) else {}), **dict(values)}
    return merged


def resolve_configuration(
    experiment: Mapping[str, Any],
    overrides: Mapping[str, Any],
    *,
    label: str,
    secret_overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The experiment's configuration and secrets as chaoslib resolves them for a run (env-typed values read,
    defaults applied, dynamic values loaded), with the scenario's ``configuration:`` merged in first.

    Rollbacks played later (at the drill's end, or by ``drill recover``) get these resolved values, as they
    would within ``chaos run``, not the values as written (a ``{"type": "env", ...}`` dict).
    """
    from chaoslib.configuration import load_configuration, load_dynamic_configuration
    from chaoslib.secret import load_secrets

    raw = {**dict(experiment.get("configuration") or {}), **dict(overrides)}
    try:
        configuration = load_configuration(raw)
        secrets = load_secrets(merge_secrets(experiment.get("secrets"), secret_overrides), configuration)
        configuration = load_dynamic_configuration(configuration, secrets)
    except ChaosException as e:
        raise ChaosToolkitError(
            f"Chaos Toolkit experiment {label}: cannot resolve its configuration or secrets: {e}",
            hint="set the environment variables it reads, or give the keys in the scenario's `configuration:`",
        ) from e
    return dict(configuration or {}), dict(secrets or {})


def run_rollbacks(
    op: ChaosToolkitRollbacks, *, sink: EventSink | None = None, clock: Clock = SYSTEM_CLOCK
) -> str:
    """Play an experiment's rollbacks (the ``chaostoolkit-rollbacks`` revert operation), when its rollback
    strategy says ``chaos run`` would; one line naming each rollback's outcome, or why none was played."""
    path = Path(op.experiment)
    experiment = read_experiment(path)
    rollbacks = experiment.get("rollbacks") or []
    if not rollbacks:
        return f"Chaos Toolkit experiment {path.name}: no rollbacks to play"
    # No run journal kept (no drill directory, or a ledger from before strategies): played, as drills did.
    strategy = op.strategy or "always" if op.run_journal else "always"
    play, why = rollbacks_wanted(strategy, _read_run_journal(op.run_journal))
    if not play:
        names = ", ".join(str(a.get("name") or a.get("ref")) for a in rollbacks)
        return f"Chaos Toolkit experiment {path.name}: rollbacks not played ({why}); not restored: {names}"
    configuration, secrets = resolve_configuration(
        experiment, op.configuration, label=path.name, secret_overrides=op.secrets
    )
    handler = JournalEvents(sink, clock, str(op.title or experiment.get("title", "")))
    registry = EventHandlerRegistry()
    registry.register(handler)
    runs: list[Any] = []
    with kube_env(op.kubeconfig, op.context), chaoslib_logs(_log_beside(op.run_journal)):
        try:
            handler.start_rollbacks(experiment)
            apply_rollbacks(experiment, configuration, secrets, None, None, registry, runs)
            handler.rollbacks_completed(experiment, {})
        except ChaosException as e:
            raise ChaosToolkitError(f"Chaos Toolkit rollbacks of {path.name} failed: {e}") from e
    outcomes = "; ".join(
        f"{(x.get('activity') or {}).get('name')}: {x.get('status')} ({float(x.get('duration') or 0):.1f}s)"
        for x in runs
    )
    failed = [x for x in runs if x.get("status") != "succeeded"]
    if failed:
        names = ", ".join(str((x.get("activity") or {}).get("name")) for x in failed)
        raise ChaosToolkitError(
            f"Chaos Toolkit rollbacks of {path.name}: {outcomes}; not restored: {names}",
            hint="the revert stays pending in the ledger; fix the cause and run `drill recover`",
        )
    return f"Chaos Toolkit experiment {path.name}: {len(runs)} rollbacks played ({why}): {outcomes}"


def _read_run_journal(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        data = json.loads(read_bounded(Path(path)).decode("utf-8"))
    except (UnreadableFile, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _log_beside(run_journal: str | None) -> Path | None:
    return Path(run_journal).parent / "chaostoolkit.log" if run_journal else None


def versions() -> dict[str, str]:
    """The versions of chaostoolkit-lib and chaostoolkit-kubernetes a run used (for the journal)."""
    found: dict[str, str] = {}
    for dist, key in (
        ("chaostoolkit-lib", "chaoslib_version"),
        ("chaostoolkit-kubernetes", "chaosk8s_version"),
    ):
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[key] = "not installed"
    return found


class _ScrubbingFormatter(logging.Formatter):
    """chaoslib logs HTTP responses whole (headers included): secrets are scrubbed before a line is written."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), secrets_from_env(os.environ))


@contextlib.contextmanager
def chaoslib_logs(log_file: Path | None) -> Iterator[None]:
    """chaoslib's own logging (and the warnings it raises) go to ``log_file`` (default: the state dir's
    ``logs/chaostoolkit.log``), not to the drill's console.

    chaoslib logs every step, deprecation warnings and, when a provider fails, whole HTTP responses with their
    headers: useful in a file beside the journal, noise (and possibly tokens) on a responder's screen.
    """
    logger = logging.getLogger("chaostoolkit")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    path = log_file or paths.state_dir() / "logs" / "chaostoolkit.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for w in caught:
            logger.warning("%s: %s", w.category.__name__, w.message)
    finally:
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers = saved[2]


def substitute_arguments(
    arguments: Mapping[str, Any], configuration: Mapping[str, Any], secrets: Mapping[str, Any]
) -> dict[str, Any]:
    """An activity's arguments with ``${key}`` filled in from the resolved configuration, as chaoslib does."""
    from chaoslib import substitute

    return dict(substitute(dict(arguments), dict(configuration), dict(secrets)) or {})


def write_run_journal(journal: Mapping[str, Any], path: Path) -> None:
    """Chaos Toolkit's run journal (what ``chaos run`` writes as journal.json), secrets left out and scrubbed."""
    kept = json.loads(json.dumps(journal, default=str))
    experiment = kept.get("experiment")
    if isinstance(experiment, dict) and experiment.get("secrets"):
        experiment["secrets"] = dict.fromkeys(experiment["secrets"], "(not recorded)")
    text = scrub(json.dumps(kept, indent=2), secrets_from_env(os.environ))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


#: ``--hypothesis-strategy`` values, as chaos run spells them.
HYPOTHESIS_STRATEGIES = {
    "default": Strategy.DEFAULT,
    "before-method-only": Strategy.BEFORE_METHOD,
    "after-method-only": Strategy.AFTER_METHOD,
    "continuously": Strategy.CONTINUOUS,
}


def rollbacks_wanted(strategy: str, journal: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether ``chaos run --rollback-strategy STRATEGY`` would play the rollbacks after this run, and why.

    No run journal (drills stopped mid-method) reads as an interrupted run, as chaos run would see it.
    """
    status = str((journal or {}).get("status") or "interrupted")
    deviated = bool((journal or {}).get("deviated"))
    if strategy == "always":
        return True, "rollback strategy always"
    if strategy == "never":
        return False, "rollback strategy never"
    if strategy == "deviated":
        return deviated, "the experiment deviated" if deviated else "rollback strategy deviated: no deviation"
    if status in ("failed", "interrupted"):
        return False, f"rollback strategy default: the experiment {status}"
    return True, f"rollback strategy default: the experiment {status}"


def run_experiment(
    experiment: dict[str, Any],
    settings: dict[str, Any],
    handler: JournalEvents,
    *,
    hypothesis_strategy: str = "default",
    kubeconfig: str | Path,
    context: str | None,
    label: str,
    log_file: Path | None = None,
) -> dict[str, Any]:
    """Run an experiment's hypothesis and method against the drill cluster; chaoslib's journal back."""
    from chaoslib.experiment import run_experiment as chaoslib_run_experiment

    with kube_env(kubeconfig, context), chaoslib_logs(log_file):
        try:
            # chaoslib's own entry point (what `chaos run` calls): it fills the activity cache that `ref`
            # steps are looked up in, which driving its Runner directly does not.
            journal: dict[str, Any] = chaoslib_run_experiment(
                experiment,
                settings=settings,
                strategy=HYPOTHESIS_STRATEGIES[hypothesis_strategy],
                event_handlers=[handler],
            )
        except ChaosException as e:
            raise ChaosToolkitError(f"Chaos Toolkit experiment {label} failed: {e}") from e
    return journal


class ExperimentRun:
    """An experiment run in a background thread, so that the drill goes on while its method does.

    A drill's clock starts when the first action changes the cluster, and the page goes out on detection:
    neither may wait for the rest of the method (a slow drain, a pause of minutes). chaoslib installs its own
    SIGTERM/SIGUSR handlers around a run, which only the main thread may do and which would take the drill's
    own (the drill reverts on a signal): in the thread its ``exit_signals`` is left out.
    """

    def __init__(
        self,
        experiment: dict[str, Any],
        settings: dict[str, Any],
        handler: JournalEvents,
        *,
        kubeconfig: str | Path,
        context: str | None,
        label: str,
        log_file: Path | None = None,
        hypothesis_strategy: str = "default",
    ) -> None:
        self.handler = handler
        self.journal: dict[str, Any] | None = None
        self.error: ChaosToolkitError | None = None
        self._args = (experiment, settings, handler)
        self._kw: dict[str, Any] = {
            "kubeconfig": kubeconfig,
            "context": context,
            "label": label,
            "log_file": log_file,
            "hypothesis_strategy": hypothesis_strategy,
        }
        self._thread = threading.Thread(target=self._run, name=f"drills-ctk-{label}", daemon=True)

    def start(self) -> ExperimentRun:
        self._thread.start()
        return self

    def _run(self) -> None:
        import chaoslib.run as chaoslib_run

        try:
            with _ENV_LOCK:
                saved = chaoslib_run.exit_signals
                chaoslib_run.exit_signals = contextlib.nullcontext
                try:
                    self.journal = run_experiment(*self._args, **self._kw)
                finally:
                    chaoslib_run.exit_signals = saved
        except ChaosToolkitError as e:
            self.error = e
        except Exception as e:  # a provider's bug must not vanish with its thread
            self.error = ChaosToolkitError(f"Chaos Toolkit experiment {self._kw['label']} crashed: {e}")
        finally:
            self.handler.done.set()
            self.handler.acting.set()
            self.handler.acted.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


# ---- validation, as chaoslib does it, every problem at once ---------------------------------------------


@dataclass(frozen=True)
class ExperimentProblem:
    """One thing wrong in an experiment: where (``method[1]``, ``rollbacks[0]``...) and which activity."""

    where: str
    activity: str | None
    field: str
    message: str

    def __str__(self) -> str:
        who = f" (activity {self.activity!r})" if self.activity else ""
        return f"{self.where}{who}: {self.field}: {self.message}"

    @property
    def path(self) -> tuple[str | int, ...]:
        """Where in the experiment's data (``("method", 1, "ref")``), to find its line in the file."""
        parts: list[str | int] = []
        for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", self.where):
            parts.append(int(index) if index else name)
        if self.field not in ("activity", "experiment") and self.field != self.where:
            parts.append(self.field)
        return tuple(parts)


def _env_problems(
    section: str, values: Mapping[str, Any], given: Mapping[str, Any], *, defaults: bool = True
) -> list[ExperimentProblem]:
    """Env-typed values with no value. chaoslib honours ``default`` for configuration, not for secrets."""
    problems = []
    for key, value in {**values, **given}.items():
        if isinstance(value, Mapping) and value.get("type") == "env":
            var = str(value.get("key", ""))
            if not (defaults and "default" in value) and var not in os.environ:
                problems.append(
                    ExperimentProblem(
                        section,
                        None,
                        str(key),
                        f"reads the environment variable {var} which is not set"
                        + (
                            f" and has no default; set it, give a `default`, or give `{key}` in the "
                            "scenario's `configuration:`"
                            if defaults
                            else f" (chaoslib has no defaults for secrets); set it, or give `{key}` in the "
                            "scenario's `secrets:`"
                        ),
                    )
                )
    return problems


def _activity_problems(where: str, activity: Any, names: set[str]) -> list[ExperimentProblem]:
    from chaoslib.activity import ensure_activity_is_valid

    if not isinstance(activity, Mapping):
        return [ExperimentProblem(where, None, "activity", "must be a mapping (an activity or a ref)")]
    ref = activity.get("ref")
    if ref is not None:
        if ref not in names:
            return [ExperimentProblem(where, str(ref), "ref", f"no activity named {ref!r} in the experiment")]
        return []
    name = str(activity.get("name") or "") or None
    try:
        ensure_activity_is_valid(dict(activity))
    except ChaosException as e:
        field = "provider" if "provider" in str(e) or "func" in str(e) or "module" in str(e) else "activity"
        return [ExperimentProblem(where, name, field, str(e))]
    return []


def experiment_problems(
    experiment: Mapping[str, Any],
    *,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> list[ExperimentProblem]:
    """Every problem chaoslib would find, with the scenario's ``configuration``/``secrets`` merged in first.

    chaoslib's own ``ensure_experiment_is_valid`` stops at the first problem; this runs its per-activity check
    on every activity (provider module and function exist in the installed extension, arguments fit the
    function's signature), checks that every ``ref`` resolves and every env-typed value has a value or a
    default, then runs the whole-experiment check for what is left (title, description, hypothesis, controls).
    """
    from chaoslib.experiment import ensure_experiment_is_valid

    given_config = dict(configuration or {})
    merged = dict(experiment)
    merged["configuration"] = {**dict(experiment.get("configuration") or {}), **given_config}
    merged["secrets"] = merge_secrets(experiment.get("secrets"), secrets)
    problems: list[ExperimentProblem] = []
    problems += _env_problems("configuration", dict(experiment.get("configuration") or {}), given_config)
    for scope, values in dict(experiment.get("secrets") or {}).items():
        if isinstance(values, Mapping):
            given = (
                dict((secrets or {}).get(scope) or {})
                if isinstance((secrets or {}).get(scope), Mapping)
                else {}
            )
            problems += _env_problems(f"secrets.{scope}", values, given, defaults=False)
    activities: list[tuple[str, Any]] = []
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    if isinstance(hypothesis, Mapping):
        activities += [
            (f"steady-state-hypothesis.probes[{i}]", a) for i, a in enumerate(hypothesis.get("probes") or [])
        ]
    method = experiment.get("method")
    if not isinstance(method, list):
        problems.append(ExperimentProblem("method", None, "method", "an experiment needs a method (a list)"))
        method = []
    activities += [(f"method[{i}]", a) for i, a in enumerate(method)]
    activities += [(f"rollbacks[{i}]", a) for i, a in enumerate(experiment.get("rollbacks") or [])]
    names = {str(a["name"]) for _, a in activities if isinstance(a, Mapping) and a.get("name")}
    for where, activity in activities:
        problems += _activity_problems(where, activity, names)
    if not problems:
        try:
            with _quiet_chaoslib():
                ensure_experiment_is_valid(merged)
        except ChaosException as e:
            problems.append(ExperimentProblem("experiment", None, "experiment", str(e)))
    return problems


@contextlib.contextmanager
def _quiet_chaoslib() -> Iterator[None]:
    """chaoslib logs as it validates; the caller reports the problems itself."""
    import logging

    logger = logging.getLogger("chaostoolkit")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)
