"""The web console of ``drill serve``: the game master's and the responders' pages, a status page, the report.

Server-rendered HTML (Jinja2, autoescaped) with one small script and one stylesheet shipped as package data:
no CDN, nothing fetched from elsewhere. :mod:`.views` works out what each page shows from the journal (pure,
tested without a server).
"""
