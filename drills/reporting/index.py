"""The team history's report index, kept from the journals: what `drill history reindex` rebuilds and what
the monthly report, the handoff and `drill history` read.

Journals are the source of truth; the index (``drills.adapters.store.history``) is derived from them, so a
lost index is rebuilt and a drill is never lost. Each drill's summary is the one the file-based catalog
(``drills.reporting.catalog``) would read: its reports directory when the drill was reported (the scorecard
it was scored with, and the postmortem whose action-item statuses people edit), else its journal scored now.
Reports left without a journal (copied from another machine) are indexed too, as the catalog counts them.

:func:`refresh` is the cheap step every reading command takes first: settle crashed drills, index journals
and reports the index lacks, and take people's edits to postmortems (one ``stat`` per reported drill).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from drills.adapters.store.history import History, IndexedSummary, JournalEntry
from drills.adapters.store.journal import JOURNAL_FILE, JournalRead, read_journal
from drills.engine.ladder import DrillStatus
from drills.engine.scoring import score
from drills.errors import DrillError, JournalError, Problem
from drills.model.policy import Policy
from drills.model.scorecard import Scorecard
from drills.reporting.catalog import load_report_dir, parse_action_items, summary_from_scorecard
from drills.reporting.report import POSTMORTEM, SCORECARD, render_postmortem

#: Journals written to the index per transaction: big enough that PostgreSQL's commits do not dominate.
BATCH = 200

Progress = Callable[[int], None]


@dataclass
class IndexResult:
    journals: int = 0
    reports_only: int = 0
    updated_actions: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def drills(self) -> int:
        return self.journals + self.reports_only


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def from_report_dir(directory: Path) -> IndexedSummary:
    """A reported drill's summary, as the catalog reads it (scorecard.json and the postmortem's items)."""
    summary = load_report_dir(directory)
    postmortem = directory / POSTMORTEM
    mtime = _mtime_ns(postmortem)
    return IndexedSummary(summary, postmortem if mtime is not None else None, mtime)


def entry_for(read: JournalRead, journal: Path, reports: Path | None, policy: Policy | None) -> JournalEntry:
    """One journal as the index holds it: the drill's row, its checks and roles, and its summary."""
    started = read.drill_started
    assert started is not None
    directory = None if reports is None else reports / started.drill_id
    if directory is not None and (directory / SCORECARD).is_file():
        try:
            indexed = from_report_dir(directory)
            with open(directory / SCORECARD, "rb") as f:  # noqa: PTH123
                card = Scorecard.model_validate_json(f.read())
            return JournalEntry(started, read.events, journal, card, indexed)
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            pass  # a broken report: the journal is the truth, score it again
    card = score(read.events, policy)
    markdown = render_postmortem(card, read.events)
    summary = summary_from_scorecard(card, parse_action_items(markdown, card.drill_id), started.team)
    return JournalEntry(started, read.events, journal, card, IndexedSummary(summary))


def _journals(journals: Path) -> Iterator[tuple[str, Path]]:
    try:
        with os.scandir(journals) as entries:
            names = sorted(e.name for e in entries if e.is_dir())
    except FileNotFoundError:
        return
    for name in names:
        path = journals / name / JOURNAL_FILE
        if path.is_file():
            yield name, path


def _report_dirs(reports: Path) -> list[tuple[str, Path]]:
    try:
        with os.scandir(reports) as entries:
            return sorted((e.name, Path(e.path)) for e in entries if e.is_dir())
    except FileNotFoundError:
        return []


def _index_journals(
    history: History,
    chosen: Iterator[tuple[str, Path]],
    reports: Path | None,
    policy: Policy | None,
    result: IndexResult,
    progress: Progress | None,
) -> set[str]:
    done: set[str] = set()
    batch: list[JournalEntry] = []
    for _, path in chosen:
        try:
            read = read_journal(path)
        except JournalError as e:
            result.problems.append(Problem(str(path), None, "", f"skipped: {e.message}"))
            continue
        if read.drill_started is None:
            result.problems.append(Problem(str(path), None, "", "skipped: no drill.started event"))
            continue
        try:
            batch.append(entry_for(read, path, reports, policy))
        except DrillError as e:
            result.problems.append(Problem(str(path), None, "", f"skipped: {e.message}"))
            continue
        done.add(read.drill_started.drill_id)
        if len(batch) >= BATCH:
            history.record_journals(batch)
            result.journals += len(batch)
            batch = []
            if progress is not None:
                progress(result.journals)
    if batch:
        history.record_journals(batch)
        result.journals += len(batch)
        if progress is not None:
            progress(result.journals)
    return done


def _index_reports(
    history: History, dirs: list[tuple[str, Path]], known: set[str], result: IndexResult
) -> None:
    batch: list[IndexedSummary] = []
    for name, directory in dirs:
        if name in known or not (directory / SCORECARD).is_file():
            continue
        try:
            indexed = from_report_dir(directory)
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as e:
            result.problems.append(Problem(f"{directory}/{SCORECARD}", None, "", f"skipped: {e}"))
            continue
        if indexed.summary.drill_id in known:
            continue
        known.add(indexed.summary.drill_id)
        batch.append(indexed)
    result.reports_only += history.index(batch)


def reindex(
    history: History,
    journals: Path,
    reports: Path | None,
    *,
    policy: Policy | None = None,
    progress: Progress | None = None,
) -> IndexResult:
    """Rebuild the index from every journal under ``journals`` (and reports that have none).

    Drills still running on this host are left as they are (their runner finishes them). Rows of drills
    whose journal is not here stay: with a shared PostgreSQL they are other machines' drills.
    """
    result = IndexResult()
    history.reconcile()
    live = {d.drill_id for d in history.drills(status=DrillStatus.RUNNING)}
    done = _index_journals(
        history, (j for j in _journals(journals) if j[0] not in live), reports, policy, result, progress
    )
    if reports is not None:
        _index_reports(history, _report_dirs(reports), done | live, result)
    return result


def refresh(
    history: History, journals: Path, reports: Path | None, *, policy: Policy | None = None
) -> IndexResult:
    """Bring the index up to date cheaply before reading it (see the module docstring)."""
    result = IndexResult()
    history.reconcile()
    indexed = history.postmortems()
    live = {d.drill_id for d in history.drills(status=DrillStatus.RUNNING)}
    missing = (j for j in _journals(journals) if j[0] not in indexed and j[0] not in live)
    done = _index_journals(history, missing, reports, policy, result, None)
    if reports is None:
        return result
    dirs = _report_dirs(reports)
    _index_reports(history, dirs, set(indexed) | done | live, result)
    for name, directory in dirs:
        if name not in indexed:
            continue
        path, mtime = indexed[name]
        postmortem = directory / POSTMORTEM
        now = _mtime_ns(postmortem)
        if now is None or (path == str(postmortem) and now == mtime):
            continue
        try:
            if path is None:
                # Indexed from its journal before it was reported: the reports are what people edit.
                history.index([from_report_dir(directory)])
            else:
                text = postmortem.read_text(encoding="utf-8", errors="replace")
                history.update_actions(name, parse_action_items(text, name), now)
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as e:
            result.problems.append(Problem(str(postmortem), None, "", f"not re-read: {e}"))
            continue
        result.updated_actions += 1
    return result


__all__ = ["BATCH", "IndexResult", "entry_for", "from_report_dir", "refresh", "reindex"]
