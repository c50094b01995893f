"""Errors of the top floor: configuration and usage, shown as one line by the CLI."""
from __future__ import annotations


class ConfigError(Exception):
    """A configuration value is missing, unknown or of the wrong type; the message names the key."""


class UsageError(Exception):
    """The command line asks for something that cannot be done; the message says what."""
