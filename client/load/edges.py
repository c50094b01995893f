"""The servers' side of a load run: the edges the steering service names, and their ``/_/metrics``.

* `fetch_edges` reads ``GET {steering}/edges`` (name, region, URL, in rotation or why not).
* `parse_prometheus` (pure) turns Prometheus text into ``{(name, labels): value}``.
* `edge_totals` (pure) keeps what the load tester shows: bytes served by tier (ram, disk, fill,
  stale), bytes filled from upstreams, requests by cache result.
* `EdgeRates` (pure) turns two successive totals into rates over the interval: bytes/s served,
  byte hit ratio (cache tiers / all bytes served), fill bytes/s, fills (cache misses) per second.
  A counter that went down means the edge restarted: the new value is the whole delta.

Only URLs named by the steering service are scraped, and (unless the run allows remote
targets) only on loopback.
"""
from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

__all__ = ["EdgeInfo", "fetch_edges", "parse_prometheus", "edge_totals", "EdgeRates", "is_loopback_url",
           "scrape_edge"]

CACHE_TIERS = ("ram", "disk", "stale")


@dataclass(frozen=True)
class EdgeInfo:
    name: str
    region: str
    url: str
    in_rotation: bool
    reason: str = ""


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def fetch_edges(http: aiohttp.ClientSession, steering_url: str, timeout_s: float = 5.0) -> list[EdgeInfo]:
    """The steering service's edge list; raises aiohttp/asyncio errors or ValueError."""
    async with http.get(f"{steering_url}/edges", timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
        if resp.status != 200:
            raise ValueError(f"GET /edges answered HTTP {resp.status}")
        doc = await resp.json(content_type=None)
    return [EdgeInfo(name=str(e["name"]), region=str(e["region"]), url=str(e["url"]).rstrip("/"),
                     in_rotation=bool(e.get("in_rotation")), reason=str(e.get("reason") or ""))
            for e in doc["edges"]]


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    out = []
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        key = text[i:eq].strip().lstrip(",").strip()
        j = eq + 2  # past ="
        value = []
        while text[j] != '"':
            if text[j] == "\\":
                j += 1
                value.append({"n": "\n"}.get(text[j], text[j]))
            else:
                value.append(text[j])
            j += 1
        out.append((key, "".join(value)))
        i = j + 1
        while i < len(text) and text[i] in ", ":
            i += 1
    return tuple(sorted(out))


def parse_prometheus(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a Prometheus text exposition: ``{(name, sorted label pairs): value}``."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if "{" in line:
                name, rest = line.split("{", 1)
                labels_text, value_text = rest.rsplit("}", 1)
                labels = _labels(labels_text)
            else:
                name, value_text = line.split(None, 1)
                labels = ()
            samples[(name.strip(), labels)] = float(value_text.split()[0])
        except (ValueError, IndexError):
            continue  # a line we do not understand is skipped, not fatal
    return samples


def edge_totals(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, Any]:
    """What the load tester keeps of an edge's metrics (cumulative counters)."""
    served: dict[str, float] = {}
    requests: dict[str, float] = {}
    fill = 0.0
    for (name, labels), value in samples.items():
        lab = dict(labels)
        if name == "vodstack_edge_served_bytes_total":
            served[lab.get("tier", "")] = served.get(lab.get("tier", ""), 0.0) + value
        elif name == "vodstack_edge_fill_bytes_total":
            fill += value
        elif name == "vodstack_edge_requests_total":
            requests[lab.get("cache", "")] = requests.get(lab.get("cache", ""), 0.0) + value
    return {"served": served, "fill_bytes": fill, "requests": requests,
            "byte_hit_ratio": samples.get(("vodstack_edge_byte_hit_ratio", ()))}


def _delta(new: float, old: float) -> float:
    return new if new < old else new - old  # a counter that went down: the edge restarted


class EdgeRates:
    """Interval rates of one edge from successive `edge_totals` (see the module docstring)."""

    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None
        self.last_t = 0.0

    def update(self, totals: dict[str, Any], t_real: float) -> dict[str, Any] | None:
        """Rates since the previous call (None the first time)."""
        prev, prev_t = self.last, self.last_t
        self.last, self.last_t = totals, t_real
        if prev is None or t_real <= prev_t:
            return None
        dt = t_real - prev_t
        tiers = set(totals["served"]) | set(prev["served"])
        d_served = {k: _delta(totals["served"].get(k, 0.0), prev["served"].get(k, 0.0)) for k in tiers}
        all_bytes = sum(d_served.values())
        hit_bytes = sum(v for k, v in d_served.items() if k in CACHE_TIERS)
        misses = _delta(totals["requests"].get("miss", 0.0), prev["requests"].get("miss", 0.0))
        requests = sum(_delta(v, prev["requests"].get(k, 0.0)) for k, v in totals["requests"].items())
        return {"served_bps": 8 * all_bytes / dt, "hit_ratio": hit_bytes / all_bytes if all_bytes > 0 else None,
                "fill_bps": 8 * _delta(totals["fill_bytes"], prev["fill_bytes"]) / dt, "fills_per_s": misses / dt,
                "requests_per_s": requests / dt}


async def scrape_edge(http: aiohttp.ClientSession, url: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """`edge_totals` of one edge, or None when it does not answer (down, killed)."""
    try:
        async with http.get(f"{url}/_/metrics", timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status != 200:
                return None
            text = await resp.text()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return None
    return edge_totals(parse_prometheus(text))
