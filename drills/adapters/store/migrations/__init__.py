"""The history index's Alembic migrations, run by :class:`drills.adapters.store.history.History` itself.

No ``alembic.ini`` at run time: the store builds Alembic's config in code and hands it the open connection
(``env.py``). ``versions/`` is append only: never edit a released revision, add the next one.
"""
