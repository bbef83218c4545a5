"""Where drills keeps things on disk, in one place so tests can move all of it with environment variables.

- state (``$DRILLS_STATE`` or ``~/.local/state/drills``): clusters, running drills' journals and revert ledgers,
  the active-drill pointer, trainee history. Never deleted by a crash.
- cache (``$DRILLS_CACHE`` or ``~/.cache/drills``): built binaries, ``bin/<k8s version>/``.
- reports (``$DRILLS_REPORTS`` or ``./reports``): what a drill leaves for people to read.
"""

from __future__ import annotations

import os
from pathlib import Path


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def state_dir() -> Path:
    return _env_path("DRILLS_STATE", Path.home() / ".local" / "state" / "drills")


def cache_dir() -> Path:
    return _env_path("DRILLS_CACHE", Path.home() / ".cache" / "drills")


def reports_dir() -> Path:
    return _env_path("DRILLS_REPORTS", Path.cwd() / "reports")


def clusters_dir() -> Path:
    """One sub-directory per drill cluster (``$DRILLS_CLUSTERS`` moves just these, e.g. for a test session)."""
    return _env_path("DRILLS_CLUSTERS", state_dir() / "clusters")


def drills_dir() -> Path:
    """One sub-directory per drill: ``journal.jsonl``, ``ledger.jsonl``, identities, logs."""
    return state_dir() / "drills"


def drill_dir(drill_id: str) -> Path:
    return drills_dir() / drill_id


def active_drill_file() -> Path:
    """Holds the id of the drill responder commands write to."""
    return state_dir() / "active-drill"


def repo_root() -> Path:
    """The source checkout (fixtures/ and scenarios/ live here)."""
    return Path(__file__).resolve().parents[3]


def fixtures_dir() -> Path:
    return _env_path("DRILLS_FIXTURES", repo_root() / "fixtures")


def scenarios_dir() -> Path:
    return _env_path("DRILLS_SCENARIOS", repo_root() / "scenarios")
