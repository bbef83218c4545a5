"""The web console of ``drill serve``: the game master's and the responders' pages, a status page, the report.

Server-rendered HTML (Jinja2, autoescaped) with one small script and one stylesheet shipped as package data:
no CDN, nothing fetched from elsewhere. :mod:`.views` works out what each page shows from the journal (pure,
tested without a server); :mod:`.handlers` serves the pages and turns form posts into the service's actions.
The server mounts :func:`routes` (``drills.server.app`` looks for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from drills.server.service import DrillService


def routes(service: DrillService) -> list[BaseRoute]:
    """The console's routes over ``service`` (paths under ``/console``)."""
    from drills.server.console.handlers import console_routes

    return console_routes(service)


__all__ = ["routes"]
