"""Errors of the top floor: configuration and usage, shown as one line by the CLI (exit 2)."""
from __future__ import annotations

from errorbase import VodstackError


class ConfigError(VodstackError):
    """A configuration value is missing, unknown or of the wrong type; the message names the key."""


class UsageError(VodstackError):
    """The command line asks for something that cannot be done; the message says what."""
