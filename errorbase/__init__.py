"""The one root of vodstack's expected errors: ``VodstackError``.

Contract: an error that a user can cause and fix (bad input, a bad configuration, a port in use,
storage that does not answer, an upstream that fails) is a :class:`VodstackError`, and its message
is one line that says what went wrong. The ``vodstack`` command prints ``vodstack: error: {e}`` for
any of them and exits non-zero (2 for configuration and usage errors, 1 for the rest). Any other
exception is a bug: the CLI says "internal error" and keeps its traceback (``--log-level debug``).

This package is the ground floor: every part may import it, and it imports nothing of ours.
"""
from __future__ import annotations

__all__ = ["VodstackError"]


class VodstackError(Exception):
    """Base of every error the CLI turns into one line (``vodstack: error: {message}``)."""
