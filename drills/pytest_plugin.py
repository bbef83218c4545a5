"""pytest plugin: keep drills as tests ("the system self-heals within SLA") in a team's monthly chaos run.

Installed with drills (``pytest11`` entry point ``drills``), so any test suite can write::

    def test_pod_loss_self_heals(run_drill):
        card = run_drill("pod-kill-self-healing", responder="bot", mode="chaos-test")
        assert card.passed, card.findings

    @pytest.mark.drill("bad-deploy-rollback", responder="bot:good")
    def test_rollback_drill(drill_scorecard):
        assert drill_scorecard.clocks.mitigated_by == "human"

Fixtures:

- ``drill_cluster_for_drills`` (session): the drill cluster, brought up once (``--drills-cluster NAME``,
  ``--drills-backend``); one that was already up is used as is and left running.
- ``run_drill``: a callable ``run_drill(scenario, responder="bot", *, mode, seed, policy, trainee, options)
  -> Scorecard`` running the drill unattended on that cluster (``options``: a
  :class:`drills.runner.options.DrillOptions` to start from; by default the session's cluster, no
  dashboard, no signal handlers). Each drill's score,
  grade, outcome, failed checks and report path become JUnit properties of the test (``record_property``),
  and with ``--drills-junit-dir DIR`` each drill's own JUnit file (one test case per check) is copied there.
- ``drill_scorecard``: runs the drill named by the test's ``@pytest.mark.drill(...)`` marker.

Nothing is imported from drills' runner until a fixture is used, so loading the plugin costs nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from drills.model.scorecard import Scorecard
    from drills.runner.run import DrillResult

DEFAULT_CLUSTER = "drills-pytest"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("drills", "chaos drills as tests")
    group.addoption(
        "--drills-cluster",
        default=os.environ.get("DRILLS_PYTEST_CLUSTER", DEFAULT_CLUSTER),
        help="Drill cluster to run drills on (brought up if needed). Env: DRILLS_PYTEST_CLUSTER.",
    )
    group.addoption(
        "--drills-backend",
        default=os.environ.get("DRILLS_PYTEST_BACKEND", "embedded"),
        choices=("embedded", "kind", "context"),
        help="Backend of the drill cluster.",
    )
    group.addoption(
        "--drills-keep-cluster",
        action="store_true",
        help="Leave the drill cluster running after the session (it is torn down if this run started it).",
    )
    group.addoption("--drills-junit-dir", default=None, help="Copy each drill's own JUnit file here.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "drill(scenario, **options): run this drill for the test (use the drill_scorecard fixture); options: "
        "responder, mode, seed, policy, trainee, or options=DrillOptions(...) (drills.runner.options)",
    )


@pytest.fixture(scope="session")
def drill_cluster_for_drills(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The drill cluster (a ``ClusterHandle``); started for this session unless it was already up."""
    from drills.adapters.clusters import facade as clusters
    from drills.errors import ClusterError

    name = str(request.config.getoption("--drills-cluster"))
    backend = str(request.config.getoption("--drills-backend"))
    try:
        handle = clusters.get(name)
        started_here = False
    except ClusterError:
        handle = clusters.up(name, backend=backend, progress=False)
        started_here = True
    yield handle
    if started_here and not request.config.getoption("--drills-keep-cluster"):
        clusters.down(name)


DrillRunner = Callable[..., "Scorecard"]


def _record(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None], result: DrillResult
) -> None:
    card = result.scorecard
    prefix = f"drill.{result.drill_id}"
    record_property(f"{prefix}.scenario", card.scenario_id)
    record_property(f"{prefix}.outcome", result.outcome.value)
    record_property(f"{prefix}.score", f"{card.score:.1f}")
    record_property(f"{prefix}.grade", card.grade)
    record_property(f"{prefix}.passed", str(card.passed).lower())
    record_property(f"{prefix}.failed_checks", ",".join(c.id for c in card.failed_checks))
    record_property(f"{prefix}.report", str(result.reports.html))
    for clock in ("ttd", "tta", "ttm", "ttr"):
        value = getattr(card.clocks, clock)
        if value is not None:
            record_property(f"{prefix}.{clock}_seconds", f"{value.total_seconds():.1f}")
    junit_dir = request.config.getoption("--drills-junit-dir")
    if junit_dir:
        target = Path(str(junit_dir))
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.reports.junit, target / f"drill-{result.drill_id}.xml")


@pytest.fixture
def run_drill(
    request: pytest.FixtureRequest,
    drill_cluster_for_drills: Any,
    record_property: Callable[[str, object], None],
    tmp_path: Path,
) -> DrillRunner:
    """``run_drill(scenario, responder="bot", *, mode, seed, policy, trainee, options) -> Scorecard`` on the
    session's drill cluster."""
    from io import StringIO

    from rich.console import Console

    from drills.runner.run import ClusterTarget, DrillOptions, DrillRun, ReportingOptions, parse_mode

    results: list[DrillResult] = []

    def run(
        scenario: Any,
        responder: str | Path = "bot",
        *,
        mode: str | None = None,
        seed: int | None = None,
        policy: Any = None,
        trainee: str | None = None,
        options: DrillOptions | None = None,
    ) -> Scorecard:
        base = options or DrillOptions(
            cluster=ClusterTarget(
                name=getattr(drill_cluster_for_drills, "name", DEFAULT_CLUSTER),
                handle=drill_cluster_for_drills,
            ),
            reporting=ReportingOptions(dashboard=False, console=Console(file=StringIO(), width=120)),
            handle_signals=False,
        )
        drill_options = replace(
            base,
            mode=parse_mode(mode) if mode is not None else base.mode,
            policy=policy if policy is not None else base.policy,
            responder=replace(
                base.responder,
                responder=responder,
                seed=seed if seed is not None else base.responder.seed,
                trainee=trainee or base.responder.trainee,
            ),
        )
        result = DrillRun(scenario, drill_options).execute()
        results.append(result)
        _record(request, record_property, result)
        return result.scorecard

    run.results = results  # type: ignore[attr-defined]
    return run


@pytest.fixture
def drill_scorecard(request: pytest.FixtureRequest, run_drill: DrillRunner) -> Scorecard:
    """The scorecard of the drill named by the test's ``@pytest.mark.drill(scenario, responder=..., ...)``."""
    marker = request.node.get_closest_marker("drill")
    if marker is None or not marker.args:
        raise pytest.UsageError("drill_scorecard needs @pytest.mark.drill('scenario-id', ...) on the test")
    return run_drill(*marker.args, **marker.kwargs)
