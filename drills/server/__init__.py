"""The drill server (`drill serve`): one HTTP server per team that responders join from their own machines.

It sits between the runner (which runs a drill) and the CLI (which, with ``DRILLS_SERVER`` set, becomes its
client): the server is the only writer of a served drill's journal, and records the authenticated person as the
actor of every event.
"""
