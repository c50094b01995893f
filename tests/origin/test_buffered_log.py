"""httpsem.buffered_log.BufferedLog: the servers' access logs, written in batches."""
from __future__ import annotations

import asyncio
import io
import logging
import time

from httpsem.buffered_log import BufferedLog, quote


def test_buffers_flushes_and_obeys_the_logger_level(caplog):
    stream = io.StringIO()
    log = BufferedLog("test.access", stream, buffer_bytes=300, flush_s=0.05, clock=lambda: 0.0)
    caplog.set_level(logging.WARNING, logger="test.access")
    log.write("request a=1")
    log.flush()
    assert stream.getvalue() == "" and not log.enabled  # --log-level warning: no access log

    caplog.set_level(logging.INFO, logger="test.access")

    async def writes() -> None:
        log.write("request a=1")
        assert stream.getvalue() == ""  # buffered...
        await asyncio.sleep(0.1)
        assert stream.getvalue().count("\n") == 1  # ...until flush_s has passed
        for _ in range(10):  # ~60 bytes a line: the buffer bound writes without waiting
            log.write("request a=" + "x" * 20)
        assert stream.getvalue().count("\n") >= 5

    asyncio.run(writes())
    log.write("request last=1")  # no loop running: written at once
    assert stream.getvalue().count("\n") == 12
    log.close()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(0))
    assert stream.getvalue().startswith(f"{stamp} INFO test.access request a=1\n")
    assert stream.getvalue().endswith(" INFO test.access request last=1\n")


def test_a_broken_stream_does_not_raise(caplog):
    caplog.set_level(logging.INFO, logger="test.access")
    stream = io.StringIO()
    stream.close()
    log = BufferedLog("test.access", stream)
    log.write("request a=1")  # no loop: flushed at once into a closed stream
    log.close()


def test_quote_like_the_log_formatter():
    assert quote("bytes=0-99") == "bytes=0-99"
    assert quote("a b") == '"a b"' and quote("") == '""' and quote(5) == "5"
