"""Pydantic models of drills' inputs and outputs: scenarios, policies, journal events, scorecards. No I/O."""
