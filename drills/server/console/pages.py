"""The console's Jinja2 environment: its templates as package files, autoescaping every page.

Kept apart from the routes so the pages can be rendered (and tested) from views alone, without a server.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

#: Where the console lives on the server.
PREFIX = "/console"


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("drills.server.console", "templates"),
        autoescape=True,  # every page is HTML: text from the journal never becomes markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context: Any) -> str:
    context.setdefault("console_url", PREFIX)
    context.setdefault("static_url", PREFIX + "/static")
    context.setdefault("person", None)
    context.setdefault("flash", "")
    context.setdefault("flash_kind", "")
    return environment().get_template(name).render(**context)


__all__ = ["PREFIX", "environment", "render"]
