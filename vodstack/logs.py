"""Logging, set up once by the CLI: one line per event, key=value context."""
from __future__ import annotations

import logging
import sys
from typing import TextIO

LEVELS = ("debug", "info", "warning", "error")


class KeyValueFormatter(logging.Formatter):
    """``2026-11-26T05:40:01 INFO origin.server msg key=value ...`` (context from ``extra={"kv": {...}}``)."""

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # servers log thousands of lines a second: format the time once
            self._second, self._stamp = second, self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        line = f"{self._stamp} {record.levelname} {record.name} {record.getMessage()}"
        kv = getattr(record, "kv", None)
        if kv:
            line += " " + " ".join(f"{k}={_quote(v)}" for k, v in kv.items())
        if record.exc_info and record.levelno >= logging.ERROR:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _quote(value: object) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text


def setup_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Send every logger to ``stream`` (stderr) at ``level`` with the key=value formatter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The formatter prints none of the caller's file and line, thread or process: servers logging
    # every request need not look them up (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # aiohttp's own access logger is replaced by ours
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
