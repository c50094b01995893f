"""CMCD from real players (issue 19): hls.js, dash.js and Shaka Player in Debian's chromium
(playwright-core, browser/bridge.mjs) play the watch page with ``cmcd=query|header`` and a session id
of the test's choosing; the edges that served the session log that ``sid`` on their access-log lines.

* playback advances (currentTime grows, frames are decoded, no fatal or media error);
* the browser really sent CMCD in the mode asked for (the ``CMCD`` query argument, or ``CMCD-*``
  headers, which are not CORS-safelisted: the edges' preflight answer must allow them);
* the edges' access-log lines of the session (``vodstack.supervisor.access_log_path``: the stack has
  each edge append its access log to ``DATA_DIR/logs/EDGE.access.log``) carry
  ``sid=<that sid>``, with ``ot=v`` and ``ot=a`` (and ``ot=m`` for HLS media playlists, the only
  playlists an edge serves: the multivariant playlist and the MPD come from the steering service);
* no edge counted malformed CMCD (``vodstack_edge_cmcd_malformed_total`` did not move): what the
  players send parses.

What each player sends, as seen here (hls.js 1.7.4, dash.js 5.2.1, Shaka Player 5.2.12, CMCD v1):

* hls.js (``cmcd: {sessionId, contentId, useHeaders}``): CMCD on every playlist and fragment it
  loads, the multivariant playlist from the steering service included (not on ``/steer``). Media
  and audio fragments: ``bl br cid d dl mtp nor ot rtp sf=h sid st=v su`` (``nor`` on video only);
  init segments the same less ``dl nor rtp``; media playlists ``ot=m`` with ``bl br mtp``. No
  ``tb``. ``useHeaders: true`` spreads them over CMCD-Object, -Request, -Session and -Status.
* dash.js (``streaming.cmcd: {enabled, sid, cid, mode}``): segments ``bl br cid d dl mtp nor ot rtp
  sf=d sid st su tb``; init segments only ``cid ot sf sid st su``; the MPD (from the steering
  service) too. Quirk: its index.d.ts types ``mode`` as ``'query' | 'header'``, but it compares the
  setting with ``Constants.CMCD_MODE_HEADERS``, which is ``'headers'``: ``'header'`` silently sends
  the query. The watch page passes ``'headers'``.
* Shaka Player (``cmcd: {enabled, sessionId, contentId, useHeaders}``): segments ``bl br cid d dl
  nor ot rtp sf=d sid st su tb`` (no ``mtp``); init segments ``br cid d ot sf sid st su``; the MPD too.
* All three quote ``sid`` and ``cid`` as strings and the edge parses every request (nothing
  counted malformed); none sent ``bs`` in these short sessions (they never starved).
"""
from __future__ import annotations

import json
import re
import secrets
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from vodstack.supervisor import access_log_path
from interop_helpers import TITLE, Browser, browser_session, http_get, need_node_package, snapshot, wait_for

CASES = [
    pytest.param("hls.js", "hls", "query", "hls.js", id="hlsjs-query"),
    pytest.param("hls.js", "hls", "header", "hls.js", id="hlsjs-header"),
    pytest.param("dash.js", "dash", "query", "dashjs", id="dashjs-query"),
    pytest.param("dash.js", "dash", "header", "dashjs", id="dashjs-header"),
    pytest.param("shaka", "dash", "query", "shaka-player", id="shaka-query"),
    pytest.param("shaka", "dash", "header", "shaka-player", id="shaka-header"),
]
#: How long a player may take to play PLAY_S of the title, and the edges to log what it asked for.
PLAY_WITHIN_S = 40.0
PLAY_S = 3.0
LOGGED_WITHIN_S = 20.0
ACCESS_LINE = re.compile(r"\bedge\.access (?P<method>[A-Z]+) (?P<path>\S+) (?P<rest>.*)$")
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
MALFORMED = "vodstack_edge_cmcd_malformed_total"


@pytest.fixture(scope="module")
def browser(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with browser_session(tmp_path_factory.mktemp("chromium-cmcd-profile"), artifacts, "-cmcd") as b:
        yield b


class AccessLogs:
    """The lines the stack's edges append to their access-log files from now on (an edge flushes its
    batch 0.5 s after the first line; a restarted edge appends to the same file)."""

    def __init__(self, stack: Any) -> None:
        data_dir = stack.stack.topology.stack.data_dir
        self.paths = {e.name: access_log_path(data_dir, e.name) for e in stack.stack.topology.edges}
        self.start = {name: p.stat().st_size if p.exists() else 0 for name, p in self.paths.items()}

    def lines_with(self, text: str) -> list[tuple[str, str]]:
        """``(edge, line)`` of every whole line written since this was made that holds ``text``."""
        out = []
        for name, path in self.paths.items():
            if not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(self.start[name])
                data = f.read()
            complete = data[:data.rfind(b"\n") + 1].decode("utf-8", "replace")
            out += [(name, line) for line in complete.splitlines() if text in line]
        return out


def access_record(server: str, line: str) -> dict[str, str] | None:
    """An edge access-log line as ``{server, method, path, status, sid, ot, ...}`` (quotes undone)."""
    m = ACCESS_LINE.search(line)
    if m is None:
        return None
    fields = {k: json.loads(v) if v.startswith('"') else v for k, v in FIELD.findall(m["rest"])}
    return {"server": server, "method": m["method"], "path": m["path"], **fields}


def metric_total(edge_url: str, name: str) -> float:
    status, body = http_get(f"{edge_url}/_/metrics")
    assert status == 200, f"{edge_url}/_/metrics: {status}"
    return sum(float(line.split()[-1]) for line in body.decode().splitlines()
               if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"))


def cmcd_keys(text: str) -> dict[str, str]:
    """CMCD v1 as players send it (``k=v,k2,...``; our sids and cids hold no comma): key -> raw value."""
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = value
    return out


def sent_cmcd(request: dict[str, Any]) -> dict[str, str]:
    """Every CMCD key one browser request carried, from its query argument and its CMCD-* headers."""
    keys = cmcd_keys(request["query"] or "")
    for value in request["headers"].values():
        keys.update(cmcd_keys(value))
    return keys


def brief(s: dict[str, Any]) -> str:
    keys = ("mode", "format", "playerVersion", "currentTime", "decodedFrames", "fragHost", "cmcd", "fatal",
            "mediaError")
    return json.dumps({k: s.get(k) for k in keys} | {"errors": s.get("errors", [])[-5:]})[:3000]


@pytest.mark.parametrize(("player", "fmt", "mode", "package"), CASES)
def test_player_sends_cmcd_and_the_edges_log_its_sid(browser, stack, player, fmt, mode, package):
    need_node_package(package)
    sid = f"cmcd-{player}-{mode}-{secrets.token_hex(4)}"
    edges = {e.name: e.url for e in stack.stack.topology.edges}
    malformed_before = {name: metric_total(url, MALFORMED) for name, url in edges.items()}
    since = browser.call("cmcd_requests", since=0)["next"]
    wanted_ot = {"v", "a", "m"} if fmt == "hls" else {"v", "a"}
    logs = AccessLogs(stack)
    browser.call("open", url=f"{stack.url_of('steering')}/watch/{TITLE}?format={fmt}&player={player}"
                             f"&region=lab-east&subs=off&cmcd={mode}&sid={sid}&session={sid}")
    last: dict[str, Any] = {}

    def played() -> bool:
        last.update(snapshot(browser))
        assert not last["fatal"] and last["mediaError"] is None, brief(last)
        return last["currentTime"] > PLAY_S and (last["decodedFrames"] or 0) > 25

    try:
        wait_for(played, PLAY_WITHIN_S, f"{player} with CMCD in the {mode} to play {PLAY_S:g} s")
    except AssertionError as e:
        raise AssertionError(f"{e}: {brief(last)}") from None
    assert (last["mode"], last["format"]) == (player, fmt), brief(last)
    assert last["cmcd"] == {"mode": mode, "sid": sid, "cid": TITLE}, brief(last)

    def logged() -> list[dict[str, str]] | None:
        records = [r for r in (access_record(*x) for x in logs.lines_with(sid)) if r is not None]
        return records if wanted_ot <= {r.get("ot") for r in records} else None

    try:
        records = wait_for(logged, LOGGED_WITHIN_S, f"access-log lines with sid={sid} and ot in {sorted(wanted_ot)}")
    except AssertionError as e:
        raise AssertionError(f"{e}; lines with the sid: {logs.lines_with(sid)[-10:]}") from None
    # what the edges logged: only edges, every line of this session's sid and a 200 (or one the
    # player cut short: hls.js aborts a fragment when it switches level)
    assert {r["server"] for r in records} <= set(edges), records
    assert all(r["sid"] == sid and r["status"].split("-")[0] in ("200", "206") for r in records), records[:5]
    video = [r for r in records if r["ot"] == "v"]
    assert all("/video/" in r["path"] for r in video) and all("/audio/" in r["path"] for r in records
                                                             if r["ot"] == "a"), records
    # what the browser sent: CMCD in the mode asked for, to the edges that logged it
    sent = [q for q in browser.call("cmcd_requests", since=since)["requests"] if sid in json.dumps(q)]
    to_edges = [q for q in sent if any(q["url"].startswith(u + "/") for u in edges.values())]
    assert to_edges, f"the browser sent no CMCD with sid {sid} to an edge"
    if mode == "query":
        assert all(q["query"] and not q["headers"] for q in to_edges), to_edges[:3]
    else:
        assert all(q["query"] is None and q["headers"] for q in to_edges), to_edges[:3]
    for name, url in edges.items():
        assert metric_total(url, MALFORMED) == malformed_before[name], f"{name} counted malformed CMCD"
    by_ot: dict[str, set[str]] = defaultdict(set)
    for q in to_edges:
        keys = sent_cmcd(q)
        by_ot[keys.get("ot", "-")] |= set(keys)
    header_names = sorted({h for q in to_edges for h in q["headers"]})
    print(f"\n{player} {last['playerVersion']} ({mode}): {len(to_edges)} requests to edges with CMCD, "
          f"{len(records)} logged by {sorted({r['server'] for r in records})}; keys by ot: "
          + "; ".join(f"{ot}: {','.join(sorted(k))}" for ot, k in sorted(by_ot.items()))
          + (f"; headers {header_names}" if header_names else "")
          + f"; to the steering service: {[urlsplit(q['url']).path.rsplit('/', 1)[-1] for q in sent if q not in to_edges]}")
