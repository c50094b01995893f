"""Running a server process: the event loop it asks for, and the stop signals.

* :func:`run_on_loop` runs a server's ``serve`` coroutine to completion on ``"uvloop"`` or on
  asyncio's own loop (``"asyncio"``), which each server's config names (DESIGN.md: chosen by
  measurement), and returns what it returns.
* :func:`stop_on_signals` is the ``stop`` event a server waits on: the caller's own, or one that
  SIGTERM or SIGINT sets (handlers installed for the whole serve, start-up included, so a signal
  never meets Python's default handlers; removed when the serve ends). What a server does between
  the signal and its exit (drain, close storage) is its own. SIGHUP is logged and ignored: a reload
  is a master's (``--workers``, ``serverkit/workers.py``), and a hangup must not kill a server.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any, Callable, Coroutine, Iterator, TypeVar

__all__ = ["LOOPS", "STOP_SIGNALS", "loop_factory", "run_on_loop", "stop_on_signals"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The event loops a server can run on.
LOOPS = ("asyncio", "uvloop")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory ``asyncio.Runner`` takes for ``loop`` (None: asyncio's own)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run_on_loop(main: Callable[[], Coroutine[Any, Any, T]], loop: str) -> T:
    """Blocking: run ``main()`` on the event loop ``loop`` names and return its result."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main())


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event | None = None) -> Iterator[asyncio.Event]:
    """The caller's ``stop`` event (no handlers installed), or one that SIGTERM/SIGINT set."""
    if stop is not None:
        yield stop
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, _on_signal, sig, stop)
    loop.add_signal_handler(signal.SIGHUP, _on_hangup)
    try:
        yield stop
    finally:
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _on_hangup() -> None:
    log.warning("SIGHUP ignored: this process is no master; to reload without a restart run the server "
                "with --workers 2 or more (or 0: one per core) and signal its master")


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("signal received", extra={"kv": {"signal": sig.name}})
    stop.set()
