"""`drill completion bash|zsh|fish`, and the callbacks that complete scenario ids, drill ids and cluster names.

Completion runs on every Tab, so the callbacks only read directories (and scenario files' ``id:`` lines with
a regular expression): no YAML parser, no pydantic, no kubernetes client.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.shell_completion import CompletionItem, get_completion_class

from drills.cli._app import ExitCode, exits

SHELLS = ("bash", "zsh", "fish")
_ID_LINE = re.compile(r"^id:\s*['\"]?([a-z0-9][a-z0-9-]*)", re.MULTILINE)


def scenario_ids(directory: Path | None = None) -> list[str]:
    from drills.adapters.store.paths import scenarios_dir

    root = directory or scenarios_dir()
    ids: set[str] = set()
    if not root.is_dir():
        return []
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError:
            continue
        m = _ID_LINE.search(head)
        ids.add(m.group(1) if m else path.stem)
    return sorted(ids)


def drill_ids() -> list[str]:
    from drills.adapters.store.paths import drills_dir

    root = drills_dir()
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if (p / "journal.jsonl").is_file()), reverse=True)


def cluster_names() -> list[str]:
    from drills.adapters.store.paths import clusters_dir

    root = clusters_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "cluster.json").is_file())


def complete_scenarios(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(s) for s in scenario_ids() if s.startswith(incomplete)]


def complete_drills(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(d) for d in drill_ids() if d.startswith(incomplete)]


def complete_clusters(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(c) for c in cluster_names() if c.startswith(incomplete)]


@exits()
@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash:  eval "$(drill completion bash)"      (or add it to ~/.bashrc)
    zsh:   eval "$(drill completion zsh)"       (or add it to ~/.zshrc)
    fish:  drill completion fish > ~/.config/fish/completions/drill.fish

    Completes commands, options, scenario ids, drill ids and cluster names.
    """
    from drills.cli._app import cli

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise SystemExit(int(ExitCode.USAGE))
    click.echo(cls(cli, {}, "drill", "_DRILL_COMPLETE").source())
