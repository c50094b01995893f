"""Fault injection for chaos tests: ``/_/delay``, a delay before the first byte of every object.

    GET  /_/delay                   {"delay_ms": N}                      (open, like /_/health)
    POST /_/delay?ms=N              {"delay_ms": N, "previous_ms": M}    (admin key)
    POST /_/delay  {"ms": N}        the same, with a JSON body

``N`` is whole milliseconds in ``0..MAX_DELAY_MS``; 0 clears the delay. Every ``GET``/``HEAD``
of an object waits that long before anything else happens (so before its first byte); the
server's own ``/_/`` paths never wait. The delay lives in the process: a restarted origin has none.

The admin key (``OriginConfig.admin_key``) is expected in ``X-Admin-Key`` (or
``Authorization: Bearer KEY``); with no key configured every admin call is refused (403).
Bad values are 400, naming the problem.
"""
from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

#: Upper bound of an injected delay (one minute: far past any sane upstream timeout).
MAX_DELAY_MS = 60_000


@dataclass
class InjectedFaults:
    """The faults an origin currently injects (mutable: the admin handler sets them)."""

    delay_ms: int = 0

    @property
    def delay_s(self) -> float:
        return self.delay_ms / 1000.0


def admin_key_ok(expected: str, headers: Any) -> bool:
    """True when ``expected`` is set and the request carries it (X-Admin-Key or Bearer)."""
    if not expected:
        return False
    given = headers.get("X-Admin-Key") or headers.get("Authorization", "").removeprefix("Bearer ")
    return hmac.compare_digest(given.encode(), expected.encode())


def parse_delay_ms(value: object) -> int:
    """A delay from a query value or a JSON number -> whole ms; ValueError naming the problem."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"ms must be a whole number of milliseconds, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"ms must be a whole number of milliseconds, got {value!r}")
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"ms must be a whole number of milliseconds, got {value!r}") from None
    if not isinstance(value, int):
        raise ValueError(f"ms must be a whole number of milliseconds, got {value!r}")
    if not 0 <= value <= MAX_DELAY_MS:
        raise ValueError(f"ms must be in 0..{MAX_DELAY_MS}, got {value}")
    return value


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


class FaultHandlers:
    """``/_/delay`` of one origin."""

    def __init__(self, admin_key: str, faults: InjectedFaults) -> None:
        self.admin_key = admin_key
        self.faults = faults

    async def delay(self, request: web.Request) -> web.Response:
        if request.method in ("GET", "HEAD"):
            return _json({"delay_ms": self.faults.delay_ms})
        if request.method != "POST":
            return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD, POST"})
        if not self.admin_key:
            return _json({"error": "admin calls are disabled (no admin_key configured)"}, 403)
        if not admin_key_ok(self.admin_key, request.headers):
            return _json({"error": "missing or wrong X-Admin-Key"}, 403)
        try:
            ms = parse_delay_ms(await _ms_of(request))
        except ValueError as e:
            return _json({"error": str(e)}, 400)
        previous_ms, self.faults.delay_ms = self.faults.delay_ms, ms
        log.warning("injected delay set", extra={"kv": {"delay_ms": ms, "previous_ms": previous_ms}})
        return _json({"delay_ms": ms, "previous_ms": previous_ms})


async def _ms_of(request: web.Request) -> object:
    """``ms`` from the query string, else from a JSON object body; ValueError when neither has it."""
    if "ms" in request.query:
        return request.query["ms"]
    text = await request.text()
    if not text.strip():
        raise ValueError("give ms=N in the query or {\"ms\": N} as JSON")
    try:
        doc = json.loads(text)
    except ValueError:
        raise ValueError("the body is not JSON (give {\"ms\": N} or ms=N in the query)") from None
    if not isinstance(doc, dict) or "ms" not in doc:
        raise ValueError("the JSON body has no \"ms\" (give {\"ms\": N})")
    return doc["ms"]
