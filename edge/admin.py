"""Admin and ops endpoints under ``/_/``: health, metrics, purge, prefill.

``/_/health`` (JSON; 200 while serving, 503 with ``"status": "draining"`` after SIGTERM) and
``/_/metrics`` (Prometheus text) are open; ``/_/purge`` and ``/_/prefill`` need the admin key in
``X-Admin-Key`` (or ``Authorization: Bearer KEY``) and are refused when the edge has none.
"""
from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from httpsem.keys import InvalidKey, validate_key, validate_prefix

from .metrics import CONTENT_TYPE_LATEST
from .prefill import PrefillManager
from .serve import EDGE_KEY

PREFILL_KEY: web.AppKey[PrefillManager] = web.AppKey("prefill", PrefillManager)


def _admin_ok(request: web.Request) -> bool:
    key = request.app[EDGE_KEY].cfg.admin_key
    if not key:
        return False
    given = request.headers.get("X-Admin-Key") or request.headers.get("Authorization", "").removeprefix("Bearer ")
    return hmac.compare_digest(given.encode(), key.encode())


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"},
                             dumps=lambda d: json.dumps(d, separators=(",", ":")))


def _refused() -> web.Response:
    return _json({"error": "admin key required"}, 403)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='{"error":"body is not JSON"}', content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error":"expected a JSON object"}', content_type="application/json")
    return data


async def handle_health(request: web.Request) -> web.Response:
    edge = request.app[EDGE_KEY]
    return _json(edge.health(), 503 if edge.draining else 200)


async def handle_metrics(request: web.Request) -> web.Response:
    edge = request.app[EDGE_KEY]
    edge.metrics.set_gauges(edge.gauges)
    return web.Response(body=edge.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def handle_purge(request: web.Request) -> web.Response:
    if not _admin_ok(request):
        return _refused()
    data = await _body(request)
    keys, prefix = data.get("keys"), data.get("prefix")
    try:
        if keys is not None:
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                return _json({"error": "keys: expected a list of strings"}, 400)
            for k in keys:
                validate_key(k)
        if prefix is not None:
            if not isinstance(prefix, str) or not prefix:
                return _json({"error": "prefix: expected a non-empty string"}, 400)
            validate_prefix(prefix)
    except InvalidKey as e:
        return _json({"error": str(e)}, 400)
    if keys is None and prefix is None:
        return _json({"error": "give keys or prefix"}, 400)
    purged = await request.app[EDGE_KEY].purge(keys=keys, prefix=prefix)
    return _json({"purged_parts": purged})


async def handle_prefill_post(request: web.Request) -> web.Response:
    if not _admin_ok(request):
        return _refused()
    data = await _body(request)
    titles = data.get("titles") or []
    popularity = data.get("popularity") or []
    if not isinstance(titles, list) or not isinstance(popularity, list):
        return _json({"error": "titles/popularity: expected lists"}, 400)
    ranked = sorted((p for p in popularity if isinstance(p, dict) and isinstance(p.get("title"), str)),
                    key=lambda p: -float(p.get("requests", p.get("score", 0)) or 0))
    ordered: list[str] = []
    for t in [p["title"] for p in ranked] + list(titles):
        if not isinstance(t, str) or not t or "/" in t:
            return _json({"error": f"bad title {t!r}"}, 400)
        if t not in ordered:
            ordered.append(t)
    if not ordered:
        return _json({"error": "no titles"}, 400)
    rate = data.get("rate_mbps")
    if rate is not None and (not isinstance(rate, (int, float)) or rate <= 0):
        return _json({"error": "rate_mbps: expected a positive number"}, 400)
    window = data.get("window")
    try:
        job = request.app[PREFILL_KEY].submit(ordered, rate, window)
    except ValueError as e:
        return _json({"error": f"window: {e}"}, 400)
    return _json(job.to_json(), 202)


async def handle_prefill_list(request: web.Request) -> web.Response:
    if not _admin_ok(request):
        return _refused()
    return _json({"jobs": [j.to_json() for j in request.app[PREFILL_KEY].jobs.values()]})


async def handle_prefill_get(request: web.Request) -> web.Response:
    if not _admin_ok(request):
        return _refused()
    job = request.app[PREFILL_KEY].jobs.get(request.match_info["job"])
    if job is None:
        return _json({"error": "no such job"}, 404)
    return _json(job.to_json())
