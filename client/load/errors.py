"""The load tester's errors. ``specs.SpecError`` (a ValueError) is raised for a malformed mix,
chaos schedule, SLO or popularity spec; `LoadError` for everything else that stops a run before
the load starts (steering unreachable, unknown title or region, a chaos event that cannot be
applied, a worker that cannot start). Both carry ``cli_message = True``: the CLI prints one line.
"""
from __future__ import annotations

__all__ = ["LoadError"]


class LoadError(Exception):
    """A load run cannot start or go on; the message says what and why."""

    cli_message = True
