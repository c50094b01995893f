"""Chaos during a load run: check a schedule before the load starts, then apply it on time.

    kill:NAME / restart:NAME        ``POST {control}/_/control/kill|restart/NAME`` (the supervisor
                                    behind ``vodstack up``; ``X-Admin-Key`` when it has one)
    evacuate:REGION / restore:REGION ``POST {steering}/regions/REGION/evacuate|restore`` (admin key)
    origin-slow:DELAY / origin-fast ``POST {control}/_/control/origin-delay?ms=N`` (every origin of
                                    the stack; origin-fast sends ms=0, its value is ignored)

`check_chaos` (pure) raises `LoadError` naming the first event that cannot be applied: unknown
server or region, no control endpoint, no admin key, an origin delay over a minute. So a
schedule is never half applied or silently ignored. `ChaosApplier.apply` returns the record kept
for the timelines: planned and applied scenario times, outcome, detail.

An origin delay is the origins' own wall-clock time (servers do not compress with ``--speed``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from .errors import LoadError
from .specs import ChaosEvent

__all__ = ["check_chaos", "find_control_url", "ChaosApplier", "CONTROL_ACTIONS", "origin_delay_ms"]

#: Actions applied through the supervisor's control endpoint.
CONTROL_ACTIONS = ("kill", "restart", "origin-slow", "origin-fast")
#: The largest delay an origin accepts (``MAX_DELAY_MS`` of origin/server/faults.py).
ORIGIN_DELAY_MAX_MS = 60_000


def origin_delay_ms(ev: ChaosEvent) -> int:
    """The delay an origin-slow/origin-fast event sets, in whole ms (origin-fast: 0)."""
    return round(ev.value_s * 1000) if ev.action == "origin-slow" else 0


def find_control_url(data_dir: Path) -> str | None:
    """The running stack's control URL from ``{data_dir}/run/up.json``, if there is one."""
    try:
        url = json.loads((data_dir / "run" / "up.json").read_text())["control_url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(url).rstrip("/") if url else None


def check_chaos(events: tuple[ChaosEvent, ...], *, control_url: str | None, servers: set[str] | None,
                regions: set[str], admin_key: str | None, control_hint: str = "") -> None:
    """Raise `LoadError` for the first event that cannot be applied (see the module docstring)."""
    for ev in events:
        label = ev.target or (f"{origin_delay_ms(ev)}ms" if ev.action == "origin-slow" else "")
        what = f"chaos {ev.action}" + (f":{label}" if label else "") + f"@{ev.at_s:g}s"
        if ev.action == "origin-slow" and origin_delay_ms(ev) > ORIGIN_DELAY_MAX_MS:
            raise LoadError(f"{what}: the origin delay must be at most {ORIGIN_DELAY_MAX_MS // 1000} s")
        if ev.action in CONTROL_ACTIONS:
            if not control_url:
                raise LoadError(f"{what} needs the supervisor's control endpoint: give --control URL "
                                f"or run `vodstack up`{control_hint}")
            if ev.action in ("kill", "restart") and servers is not None and ev.target not in servers:
                raise LoadError(f"{what}: no server named {ev.target!r} (known: {', '.join(sorted(servers))})")
        elif ev.action in ("evacuate", "restore"):
            if not admin_key:
                raise LoadError(f"{what} needs the steering admin key: give --admin-key K "
                                "(or set VODSTACK_ADMIN_KEY)")
            if ev.target not in regions:
                raise LoadError(f"{what}: unknown region {ev.target!r} (known: {', '.join(sorted(regions))})")
        else:  # pragma: no cover - specs.CHAOS_ACTIONS and this module move together
            raise LoadError(f"{what}: unknown action")


class ChaosApplier:
    """Applies checked events over HTTP; never raises for a failed call (the record says why)."""

    def __init__(self, http: aiohttp.ClientSession, *, steering_url: str, control_url: str | None,
                 admin_key: str | None, timeout_s: float = 90.0) -> None:
        self.http = http
        self.steering_url = steering_url.rstrip("/")
        self.control_url = control_url.rstrip("/") if control_url else None
        self.headers = {"X-Admin-Key": admin_key} if admin_key else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def url_for(self, ev: ChaosEvent) -> str:
        if ev.action in ("origin-slow", "origin-fast"):
            return f"{self.control_url}/_/control/origin-delay?ms={origin_delay_ms(ev)}"
        if ev.action in ("kill", "restart"):
            return f"{self.control_url}/_/control/{ev.action}/{ev.target}"
        return f"{self.steering_url}/regions/{ev.target}/{ev.action}"

    async def apply(self, ev: ChaosEvent) -> dict[str, Any]:
        """POST the event; ``{"ok", "status", "detail"}``."""
        url = self.url_for(ev)
        try:
            async with self.http.post(url, headers=self.headers, timeout=self.timeout) as resp:
                text = await resp.text()
                ok = resp.status < 300
                try:
                    doc = json.loads(text)
                except ValueError:
                    doc = None
                if isinstance(doc, dict) and ok and "origins" in doc:
                    names = ", ".join(str(o.get("name")) for o in doc["origins"] if isinstance(o, dict))
                    detail = f"origin delay {doc.get('delay_ms')} ms on {names or 'no origin'}"
                elif isinstance(doc, dict):
                    detail = doc.get("state") or "done" if ok else doc.get("error") or text[:200]
                else:
                    detail = text[:200]
                return {"ok": ok, "status": resp.status, "detail": str(detail or "")}
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return {"ok": False, "status": None, "detail": f"{type(e).__name__}: {e}"[:200]}
