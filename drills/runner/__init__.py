"""Running drills: the runner (``run``), the live dashboard, responder commands, the scripted responder (``bot``),
and the paging and detection seams (``pager``, ``detector``) other packages plug into."""
