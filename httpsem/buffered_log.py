"""Access logs of the servers: one line per request, formatted once and written in batches.

The origin's access log uses it, and so does the edge's (``edge/accesslog.py``); it lives in
``httpsem`` beside ``semantics`` so that neither server imports the other (nor ``vodstack``).

The one module of ``httpsem`` that does I/O: it writes its lines to a stream (stderr), and a
buffer's first line arms a timer on the running event loop (``call_later``) for the flush; no
aiohttp, nothing awaited.

A line has the layout of every vodstack log line (``vodstack.logs``)::

    2026-11-26T05:40:01 INFO origin.access request method=GET path=/t1/video/r1/00001.m4s status=200 ...

Going through ``logging`` for every request (a LogRecord, the handler's lock, the formatter, one
write and flush per line) cost the servers tens of µs of CPU per request, as much as the rest of
a cache hit. So, like nginx's ``access_log ... buffer=64k flush=1s``, :class:`BufferedLog` takes
lines already formatted, keeps them in a buffer and writes them to the stream in one call when
the buffer holds ``buffer_bytes``, when ``flush_s`` has passed since its first line, and on
:meth:`BufferedLog.close`. The logger's level still switches the log on and off
(``--log-level warning`` silences it), and the stream is the one the CLI's log handler writes
to (stderr) unless one is given.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Callable, Protocol


def quote(value: object) -> str:
    """A value as ``vodstack.logs`` writes it: quoted when empty or holding a space."""
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text


class LineSink(Protocol):
    """Where a log writes: a text stream (stderr), or ``edge.app.AppendFile``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class BufferedLog:
    """Buffered INFO lines of one logger: ``write(text)`` once per request, ``close()`` at the end."""

    def __init__(self, logger_name: str, stream: LineSink | None = None, *, buffer_bytes: int = 64 * 1024,
                 flush_s: float = 0.5, clock: Callable[[], float] = time.time, always: bool = False) -> None:
        self.logger = logging.getLogger(logger_name)
        self.always = always  #: written whatever the logger's level (a log file asked for by name)
        self.stream = stream
        self.buffer_bytes = buffer_bytes
        self.flush_s = flush_s
        self._clock = clock
        self._lines: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._prefix = ""

    @property
    def enabled(self) -> bool:
        return self.always or self.logger.isEnabledFor(logging.INFO)

    def write(self, text: str) -> None:
        """Add one line (``text`` without timestamp, level, logger name or newline) if the log is on."""
        if not self.always and not self.logger.isEnabledFor(logging.INFO):
            return
        second = int(self._clock())
        if second != self._second:  # the timestamp changes once a second: format it once
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second)) + f" INFO {self.logger.name} "
        line = f"{self._prefix}{text}\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.buffer_bytes:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.flush_s, self.flush)
            except RuntimeError:  # no loop (a caller outside a server): write at once
                self.flush()

    def flush(self) -> None:
        """Write the buffered lines in one call."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        block = "".join(self._lines)
        self._lines.clear()
        self._size = 0
        stream = self.stream or sys.stderr
        try:
            stream.write(block)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not break serving
            pass

    def close(self) -> None:
        self.flush()
