"""The edge's access log: one line per object request, formatted once and written in batches.

The line is the layout of every vodstack log line (``vodstack.logs``), on logger ``edge.access``::

    2026-11-26T05:40:01 INFO edge.access GET /t/... status=200 cache=ram_hit tier=ram bytes=2000 ...
        ... sid="6e2f..." ot=v bl=21300 br=3200 mtp=25400 su=- bs=- up_ms=0.0

The CMCD keys (``edge/cmcd.py``: ``-`` when the request did not say) join the line to the player's own
record of the request (``client/joined.py``); ``up_ms`` is how long the answer waited on upstream bytes
(a fill, a revalidation), which is what tells a slow fill from a slow viewer.

Going through ``logging`` (a LogRecord, the handler's lock, the formatter, one write and flush per
line) cost about 65 µs of CPU per request in ``bench/edge_vs_nginx``, more than the whole rest of a
RAM hit. So lines are formatted straight into the origin's batched writer
(``httpsem/buffered_log.py``, like nginx's ``access_log ... buffer=64k flush=1s``): written
when 64 KiB are buffered, 0.5 s after the first line, and when the server stops. The
``edge.access`` logger's level still switches the log on and off (``--log-level warning``
silences it), and the stream is the one the CLI's log handler writes to (stderr) unless one is given.
A log file named with ``--access-log FILE`` is written whatever the level (as nginx's ``access_log``
is apart from its ``error_log`` level); ``--no-access-log`` turns both off.
"""
from __future__ import annotations

import time
from typing import Callable

from httpsem.buffered_log import BufferedLog, LineSink, quote

from .cmcd import NO_CMCD_FIELDS

LOGGER_NAME = "edge.access"


class AccessLog(BufferedLog):
    """Buffered access log lines; ``request(...)`` once per request, ``close()`` when the server stops."""

    def __init__(self, stream: LineSink | None = None, buffer_bytes: int = 64 * 1024, flush_s: float = 0.5,
                 clock: Callable[[], float] = time.time, always: bool = False) -> None:
        super().__init__(LOGGER_NAME, stream, buffer_bytes=buffer_bytes, flush_s=flush_s, clock=clock, always=always)

    def request(self, method: str, path: str, *, status: int | str, cache: str, tier: str, sent_bytes: int,
                ms: float, range_header: str, peer: str, via: str, cmcd: str = NO_CMCD_FIELDS,
                up_ms: float = 0.0) -> None:
        """Add one request's line, if the log is enabled. ``status`` may be ``"200-aborted"``; range, peer
        and via come from the client and are quoted if they hold a space; ``cmcd`` is
        ``edge.cmcd.log_fields``; ``up_ms`` the time the answer waited on upstream bytes."""
        if self.enabled:
            self.write(f"{method} {path} status={status} cache={cache} tier={tier} bytes={sent_bytes} "
                       f"ms={ms} range={quote(range_header)} peer={quote(peer)} via={quote(via)} {cmcd} "
                       f"up_ms={up_ms}")
