"""The load tester's errors. ``specs.SpecError`` (a ValueError) is raised for a malformed mix,
chaos schedule, SLO or popularity spec; `LoadError` for everything else that stops a run before
the load starts (steering unreachable, unknown title or region, a chaos event that cannot be
applied, a worker that cannot start). Both are ``errorbase.VodstackError`` classes: the CLI prints one line.
"""
from __future__ import annotations

from errorbase import VodstackError

__all__ = ["LoadError"]


class LoadError(VodstackError):
    """A load run cannot start or go on; the message says what and why."""
