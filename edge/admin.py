"""Admin and ops endpoints under ``/_/``: health, metrics, purge, prefill.

``/_/health`` (JSON; 200 while serving, 503 with ``"status": "draining"`` after SIGTERM) and
``/_/metrics`` (Prometheus text) are open; ``/_/purge`` and ``/_/prefill`` need the admin key in
``X-Admin-Key`` (or ``Authorization: Bearer KEY``) and are refused when the edge has none.

An edge of several workers answers for all of them, whichever worker the connection reached
(``edge/workers.py``): health and metrics add up every worker's, a purge purges in each, a prefill
job is looked for in each. ``?worker=local`` asks one worker for itself (what the siblings send).
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
from .workers import is_local, merge_health, merge_metrics

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


async def whole_health(request_app: web.Application, local: bool = False) -> dict[str, Any]:
    """This worker's health, or with siblings (and not ``local``) the whole edge's."""
    edge = request_app[EDGE_KEY]
    own = edge.health()
    if edge.siblings is None or local:
        return own
    others = []
    for _, status, body in await edge.siblings.ask("GET", "/_/health"):
        try:
            others.append(json.loads(body))
        except ValueError:
            continue
    return merge_health(own, others)


async def handle_health(request: web.Request) -> web.Response:
    edge = request.app[EDGE_KEY]
    return _json(await whole_health(request.app, is_local(request)), 503 if edge.draining else 200)


async def handle_metrics(request: web.Request) -> web.Response:
    edge = request.app[EDGE_KEY]
    edge.metrics.set_gauges(edge.gauges)
    body = edge.metrics.render()
    if edge.siblings is not None and not is_local(request):
        texts = [body.decode()] + [b.decode() for _, status, b in await edge.siblings.ask("GET", "/_/metrics")
                                   if status == 200]
        body = merge_metrics(texts).encode()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _forwarded_admin(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in ("x-admin-key", "authorization")}


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
    edge = request.app[EDGE_KEY]
    purged = await edge.purge(keys=keys, prefix=prefix)
    if edge.siblings is not None and not is_local(request):
        for _, status, body in await edge.siblings.ask("POST", "/_/purge", headers=_forwarded_admin(request),
                                                       json=data):
            if status == 200:
                purged += int(json.loads(body).get("purged_parts", 0))
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
    jobs = [j.to_json() for j in request.app[PREFILL_KEY].jobs.values()]
    edge = request.app[EDGE_KEY]
    if edge.siblings is not None and not is_local(request):
        for _, status, body in await edge.siblings.ask("GET", "/_/prefill", headers=_forwarded_admin(request)):
            if status == 200:
                jobs += json.loads(body).get("jobs", [])
    return _json({"jobs": jobs})


async def handle_prefill_get(request: web.Request) -> web.Response:
    if not _admin_ok(request):
        return _refused()
    job = request.app[PREFILL_KEY].jobs.get(request.match_info["job"])
    edge = request.app[EDGE_KEY]
    if job is None and edge.siblings is not None and not is_local(request):
        for _, status, body in await edge.siblings.ask("GET", f"/_/prefill/{request.match_info['job']}",
                                                       headers=_forwarded_admin(request)):
            if status == 200:
                return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-store"})
    if job is None:
        return _json({"error": "no such job"}, 404)
    return _json(job.to_json())
