"""The files behind measured impact: the service graph and the SLO files, read with line-numbered errors.

``fixtures/service-graph.yaml`` is the runbook world's graph (what users call, and what that calls);
``fixtures/slo/<service>.yaml`` the SLOs burn-rate alerts are made from. Both load like scenarios: a typo or
a bad value is a ``file:line: field: message`` problem, never a crash.
"""

from __future__ import annotations

from pathlib import Path

from drills.adapters.files.scenarios import load_model
from drills.adapters.store.paths import fixtures_dir
from drills.model.service_graph import ServiceGraph
from drills.model.slo import Slo

GRAPH_FILE = "service-graph.yaml"
SLO_DIR = "slo"


def default_graph_path() -> Path:
    """The runbook world's graph (``$DRILLS_FIXTURES/service-graph.yaml``)."""
    return fixtures_dir() / GRAPH_FILE


def load_service_graph(path: Path | None = None) -> ServiceGraph:
    """The graph at ``path`` (default: the runbook world's); ScenarioError with file:line problems otherwise."""
    return load_model(path or default_graph_path(), ServiceGraph)


def slo_paths(directory: Path | None = None) -> list[Path]:
    """The SLO files of the runbook world (``$DRILLS_FIXTURES/slo/*.yaml``), sorted."""
    root = directory or fixtures_dir() / SLO_DIR
    return sorted(root.glob("*.yaml")) if root.is_dir() else []


def load_slo(path: Path) -> Slo:
    return load_model(path, Slo)
