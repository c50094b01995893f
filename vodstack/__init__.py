"""vodstack: the top floor, the `vodstack` command, topology and supervisor."""

__version__ = "0.1.0"
