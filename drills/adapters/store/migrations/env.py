"""Alembic's environment for the history index: always online, on the connection the store passes in.

The store opens (and for SQLite, tunes) the connection; this only runs the revisions on it, so the same
migrations run against SQLite and PostgreSQL with nothing but the URL to tell them apart.
"""

from __future__ import annotations

from alembic import context

from drills.adapters.store.history import METADATA

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
