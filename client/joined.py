"""The joined report: each session's own record of its requests beside the edges' access-log lines for
them (CMCD ``sid``), and where its stalls came from.

Pure, table-tested functions over frozen values; the lines themselves are ``client/edgelines.py``'s
(`parse_line`, `read_edge_logs`: files in, lines out, re-exported here). ``client/edgelogs.py`` is the
shell that finds the files and waits for their batched lines.

* `parse_line`, `EdgeLine`, `object_key`, `edge_name`, `read_edge_logs`: ``client/edgelines.py``.
* `join(session, lines)` -> `Joined`: each client request to an edge (`ClientRequest`: a
  `client.report.RequestRecord` or a load worker's request row; a request elsewhere, the steering
  service's steered master, is only counted) gets the first unmatched line of its session with the same object key
  (the client URL's path after ``/t/<token>/``, redacted or not) and the same range, preferring a line
  whose status agrees and whose ``aborted`` agrees with the request's ``complete`` (an attempt that
  failed over is a line of its own, with no client record). Requests in the session's order, lines in
  file order.
* `attribute(joined)` -> one `StallAttribution` per stall: the requests the stall waited on (video,
  audio and init requests in flight during it: started before it ended, ended after it started),
  the deciding one (the last of them to end before playback resumed), and a `Cause` by the first rule
  that holds, in this order:

  1. ``origin_error``: a failover during the stall (its failure-to-recovery gap overlaps the stall)
     whose error is an HTTP 5xx answer, or whose request's edge line has a status >= 500 from an edge
     that looked it up (an edge's own refusal, ``cache=none``, e.g. draining, is not the origin's);
  2. ``edge_failure``: another failover during the stall (the edge died, refused or timed out) -
     except a timeout whose edge line shows the edge was itself waiting on a fill (tier ``fill``, the
     upstream wait at least `FILL_SHARE` of the edge's time): that one counts as ``fill``;
  3. ``fill``: the deciding request's edge line is a fill (``tier=fill``: miss or coalesced) or a
     revalidation / stale answer that waited on upstream, and that wait (``up_ms``, wall clock, times
     the run's speed) is at least `FILL_SHARE` of the request's own duration on the client;
  4. ``network``: the deciding request's edge line says the edge answered from its cache or fast: the
     viewer's link was the bottleneck;
  5. ``unknown``: no deciding request, or no edge line joined to it.

* `segment_rows`, `hit_ratios`, `stall_totals`, `joined_section`: the tables of the report.

Clocks: client times are media seconds (a session's own clock for ``vodstack play``, the run's scenario
clock for ``vodstack load``); the edges' ``ms`` and ``up_ms`` are wall-clock ms; media seconds = wall
seconds x speed, so an edge wait converts with the session's ``speed``.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from .edgelines import EdgeLine, edge_name, object_key, parse_line, read_edge_logs

__all__ = ["Cause", "EdgeLine", "ClientRequest", "Stall", "Failover", "JoinSession", "Joined", "StallAttribution",
           "parse_line", "edge_name", "object_key", "join", "attribute", "segment_rows", "hit_ratios",
           "stall_totals", "joined_section", "unflushed", "read_edge_logs", "from_report", "from_load_row",
           "FILL_SHARE", "CAUSE_RULES", "NO_LOGS_NOTE"]

#: An upstream wait at least this share of a request's duration makes its stall a ``fill``.
FILL_SHARE = 0.5
#: A request ending this much wall time after a stall's end still counts as having ended it.
RESUME_TOLERANCE_REAL_S = 0.05
#: Object types whose requests a stall can wait on.
MEDIA_OTS = frozenset({"v", "a", "i"})
TIMEOUT_CAUSES = frozenset({"FetchTimeout", "TransferTooSlow"})
HIT_TIERS = frozenset({"ram", "disk", "stale"})
NO_LOGS_NOTE = "no edge logs joined (give --edge-logs)"
MAX_SESSIONS = 100  #: per-session attribution lists kept in a section (totals count every session)
MAX_STALLS = 20     #: stalls listed per session
MAX_WAITED = 6      #: requests listed per stall


class Cause(enum.StrEnum):
    """Where a stall came from (the module docstring gives the rules, in this order)."""

    ORIGIN_ERROR = "origin_error"
    EDGE_FAILURE = "edge_failure"
    FILL = "fill"
    NETWORK = "network"
    UNKNOWN = "unknown"


CAUSE_RULES: Mapping[Cause, str] = {
    Cause.ORIGIN_ERROR: "a failover during the stall on an HTTP 5xx (or an edge line with status >= 500)",
    Cause.EDGE_FAILURE: "another failover during the stall: the edge died, refused or timed out",
    Cause.FILL: f"the request the stall waited on was an edge fill that waited on upstream for at least "
                f"{FILL_SHARE:.0%} of its time",
    Cause.NETWORK: "the edge answered that request from cache or fast: the viewer's link was the bottleneck",
    Cause.UNKNOWN: "no edge line joined to the request the stall waited on",
}


# --- values ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class ClientRequest:
    """A request as the player recorded it (times: media seconds on the session's timeline)."""

    ot: str
    key: str
    range: str
    start_s: float
    end_s: float
    size_bytes: int
    status: int
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Stall:
    at_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.at_s + self.duration_s


@dataclass(frozen=True, slots=True, kw_only=True)
class Failover:
    at_s: float
    gap_s: float
    cause: str   #: the client.errors class name
    error: str   #: its one-line message (names the URL)


@dataclass(frozen=True, kw_only=True)
class JoinSession:
    """What the join needs of one session; ``speed``: media seconds per wall second."""

    session_id: str
    device: str
    network: str
    speed: float
    requests: tuple[ClientRequest, ...]
    behaviour: str = "play-from-0"
    """The load tester's viewer-behaviour profile of the session (``client/load/behaviour.py``)."""
    stalls: tuple[Stall, ...] = ()
    failovers: tuple[Failover, ...] = ()
    not_to_edges: int = 0
    """Requests left out: their URL is not an edge's ``/t/<token>/`` (the steering service's steered master)."""


@dataclass(frozen=True)
class Joined:
    """A session's requests, each with its edge line (None: unmatched), and its lines no request took."""

    session: JoinSession
    lines: tuple[EdgeLine | None, ...]
    extra: tuple[EdgeLine, ...]
    all_lines: tuple[EdgeLine, ...]

    @property
    def matched(self) -> int:
        return sum(1 for x in self.lines if x is not None)

    @property
    def unmatched(self) -> int:
        return len(self.lines) - self.matched


@dataclass(frozen=True, slots=True, kw_only=True)
class StallAttribution:
    stall: Stall
    cause: Cause
    reason: str
    waited_on: tuple[int, ...]   #: indexes into the session's requests
    deciding: int | None
    failovers: tuple[int, ...]   #: indexes into the session's failovers


def from_report(report: Any) -> JoinSession:
    """A `client.report.SessionReport` (times on its own clock)."""
    reqs = []
    for r in report.requests:
        key = object_key(r.url)
        if key is not None:
            reqs.append(ClientRequest(ot=r.ot, key=key, range=r.range, start_s=r.start_s, end_s=r.end_s,
                                      size_bytes=r.size_bytes, status=r.status, complete=r.complete))
    return JoinSession(
        session_id=report.session_id, device=report.device, network=report.network, speed=report.speed,
        requests=tuple(reqs), not_to_edges=len(report.requests) - len(reqs),
        stalls=tuple(Stall(s.at_s, s.duration_s) for s in report.stalls),
        failovers=tuple(Failover(at_s=f.at_s, gap_s=f.gap_s, cause=f.cause, error=f.error) for f in report.failovers))


def from_load_row(row: Mapping[str, Any], speed: float) -> JoinSession:
    """A load worker's session result (``client/load/worker.py``: ``requests`` rows in REQUEST_FIELDS order,
    ``stall_events``, ``failovers``; scenario seconds)."""
    reqs = []
    rows = row.get("requests") or ()
    for r in rows:
        ot, url, rng, start_s, _ttfb, end_s, size, status, complete = r
        key = object_key(url)
        if key is not None:
            reqs.append(ClientRequest(ot=ot or "", key=key, range=rng or "", start_s=float(start_s),
                                      end_s=float(end_s), size_bytes=int(size), status=int(status),
                                      complete=bool(complete)))
    return JoinSession(
        session_id=str(row.get("session_id", "")), device=str(row.get("device", "")),
        network=str(row.get("network_mix") or row.get("network", "")), speed=speed, requests=tuple(reqs),
        behaviour=str(row.get("behaviour") or "play-from-0"), not_to_edges=len(rows) - len(reqs),
        stalls=tuple(Stall(float(a), float(d)) for a, d in row.get("stall_events") or ()),
        failovers=tuple(Failover(at_s=float(f.get("at_s") or 0.0), gap_s=float(f.get("gap_s") or 0.0),
                                 cause=str(f.get("cause", "")), error=str(f.get("error", "")))
                        for f in row.get("failovers") or ()))


# --- the join ----------------------------------------------------------------------------------

def join(session: JoinSession, lines: Sequence[EdgeLine]) -> Joined:
    """Pair each request with an edge line (module docstring); ``lines``: any lines, in file order."""
    mine = [x for x in lines if x.sid == session.session_id]
    by_key: dict[tuple[str, str], list[int]] = {}
    for i, x in enumerate(mine):
        by_key.setdefault((x.key, x.range), []).append(i)
    taken = [False] * len(mine)
    paired: list[EdgeLine | None] = []
    for r in session.requests:
        free = [i for i in by_key.get((r.key, r.range), ()) if not taken[i]]
        if not free:
            paired.append(None)
            continue
        best = max(free, key=lambda i: ((mine[i].status == r.status), mine[i].aborted == (not r.complete), -i))
        taken[best] = True
        paired.append(mine[best])
    extra = tuple(x for i, x in enumerate(mine) if not taken[i])
    return Joined(session, tuple(paired), extra, tuple(mine))


def unflushed(joined: Iterable[Joined]) -> list[str]:
    """The sessions whose last request (the one that ended last) has no edge line yet."""
    out = []
    for j in joined:
        reqs = j.session.requests
        if reqs:
            last = max(range(len(reqs)), key=lambda i: reqs[i].end_s)
            if j.lines[last] is None:
                out.append(j.session.session_id)
    return out


# --- stall attribution -------------------------------------------------------------------------

_HTTP_5XX = re.compile(r"\bHTTP 5\d\d\b")
_URL_IN_ERROR = re.compile(r"(\S*/t/[^/\s]+/\S+?):? ")


def _failover_key(f: Failover) -> str | None:
    m = _URL_IN_ERROR.search(f.error + " ")
    return object_key(m.group(1)) if m else None


def _waited_fill(line: EdgeLine) -> bool:
    """The edge's own answer waited on a fill for most of its time."""
    return line.tier == "fill" and line.up_ms >= FILL_SHARE * line.ms and line.up_ms > 0


def failover_cause(f: Failover, joined: Joined) -> tuple[Cause, str]:
    """Rule 1 or 2 for one failover (module docstring), with the reason."""
    key = _failover_key(f)
    lines = [x for x in joined.all_lines if key is not None and x.key == key]
    spare = {id(x) for x in joined.extra}
    preferred = [x for x in lines if id(x) in spare] or lines  # the failed attempt has no client record
    errors = [x for x in preferred if x.status >= 500]
    looked = [x for x in errors if x.cache != "none"]
    if looked or (_HTTP_5XX.search(f.error) and not errors):
        said = f"{looked[0].edge} answered {looked[0].status} ({looked[0].cache})" if looked else _short(f.error)
        return Cause.ORIGIN_ERROR, f"failover at {f.at_s:.2f} s on {f.cause or 'an error'}: {said}"
    if errors:  # the edge's own refusal (draining): not the origin's
        x = errors[0]
        return Cause.EDGE_FAILURE, f"failover at {f.at_s:.2f} s: {x.edge} refused with {x.status} ({x.cache})"
    if f.cause in TIMEOUT_CAUSES:
        filling = [x for x in preferred if _waited_fill(x)]
        if filling:
            x = filling[0]
            return Cause.FILL, (f"failover at {f.at_s:.2f} s on {f.cause} while {x.edge} waited {x.up_ms:.0f} ms "
                                f"on a fill ({x.cache})")
    return Cause.EDGE_FAILURE, f"failover at {f.at_s:.2f} s on {f.cause or 'an error'}: {_short(f.error)}"


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def attribute_stall(stall: Stall, joined: Joined) -> StallAttribution:
    s = joined.session
    reqs = s.requests
    waited = tuple(i for i, r in enumerate(reqs)
                   if r.ot in MEDIA_OTS and r.start_s < stall.end_s and r.end_s > stall.at_s)
    tol = RESUME_TOLERANCE_REAL_S * max(s.speed, 1.0)
    ended = [i for i in waited if reqs[i].end_s <= stall.end_s + tol]
    deciding: int | None = (max(ended, key=lambda i: reqs[i].end_s) if ended
                            else min(waited, key=lambda i: reqs[i].end_s) if waited else None)
    fos = tuple(k for k, f in enumerate(s.failovers)
                if f.at_s <= stall.end_s and f.at_s + max(f.gap_s, 0.0) >= stall.at_s)
    found = [failover_cause(s.failovers[k], joined) for k in fos]
    for want in (Cause.ORIGIN_ERROR, Cause.EDGE_FAILURE, Cause.FILL):
        for cause, reason in found:
            if cause is want:
                return StallAttribution(stall=stall, cause=cause, reason=reason, waited_on=waited, deciding=deciding,
                                        failovers=fos)
    cause, reason = _deciding_cause(deciding, joined)
    return StallAttribution(stall=stall, cause=cause, reason=reason, waited_on=waited, deciding=deciding,
                            failovers=fos)


def _deciding_cause(deciding: int | None, joined: Joined) -> tuple[Cause, str]:
    """Rules 3 to 5: what the deciding request's edge line says."""
    if deciding is None:
        return Cause.UNKNOWN, "no media request in flight during the stall"
    r = joined.session.requests[deciding]
    line = joined.lines[deciding]
    what = f"{r.ot} {r.key.rsplit('/', 1)[-1]}"
    if line is None:
        return Cause.UNKNOWN, f"{what}: no edge line joined"
    duration_s = max(r.end_s - r.start_s, 0.0)
    up_s = line.up_ms / 1000 * joined.session.speed
    fill_like = line.tier == "fill" or (line.cache in ("revalidated", "stale") and line.up_ms > 0)
    answer = f"{line.edge} {line.cache}/{line.tier} in {line.ms:.0f} ms, {line.up_ms:.0f} ms upstream"
    if fill_like and up_s >= FILL_SHARE * duration_s:
        return Cause.FILL, f"{what}: {answer} = {up_s:.2f} of its {duration_s:.2f} media s"
    return Cause.NETWORK, f"{what}: {answer}; the request took {duration_s:.2f} media s"


def attribute(joined: Joined) -> list[StallAttribution]:
    """Every stall of the session, attributed (module docstring)."""
    return [attribute_stall(st, joined) for st in joined.session.stalls]


# --- tables ------------------------------------------------------------------------------------

def stall_totals(attributions: Iterable[StallAttribution]) -> dict[str, dict[str, float]]:
    """``{cause: {count, seconds, share}}`` for every cause (share: of all stall seconds)."""
    out: dict[str, dict[str, float]] = {c.value: {"count": 0, "seconds": 0.0, "share": 0.0} for c in Cause}
    for a in attributions:
        out[a.cause.value]["count"] += 1
        out[a.cause.value]["seconds"] += a.stall.duration_s
    total = sum(v["seconds"] for v in out.values())
    for v in out.values():
        v["seconds"] = round(v["seconds"], 3)
        v["share"] = round(v["seconds"] / total, 4) if total > 0 else 0.0
    return out


def hit_ratios(joined: Iterable[Joined], by: str) -> dict[str, dict[str, float]]:
    """Per device, network or viewer behaviour (``by``): requests and bytes the edges answered from RAM, disk or stale copies
    (hits) against fills, over every line of the sessions (other answers, refusals and errors, are
    ``other_requests``); ratios are hits / (hits + fills)."""
    out: dict[str, dict[str, float]] = {}
    for j in joined:
        group = getattr(j.session, by)
        row: dict[str, float] = out.setdefault(group, {"requests": 0, "hit_requests": 0, "fill_requests": 0, "other_requests": 0,
                                     "hit_bytes": 0, "fill_bytes": 0})
        for x in j.all_lines:
            row["requests"] += 1
            if x.tier in HIT_TIERS:
                row["hit_requests"] += 1
                row["hit_bytes"] += x.size_bytes
            elif x.tier == "fill":
                row["fill_requests"] += 1
                row["fill_bytes"] += x.size_bytes
            else:
                row["other_requests"] += 1
    for row in out.values():
        n = row["hit_requests"] + row["fill_requests"]
        b = row["hit_bytes"] + row["fill_bytes"]
        row["request_hit_ratio"] = round(row["hit_requests"] / n, 4) if n else 0.0
        row["byte_hit_ratio"] = round(row["hit_bytes"] / b, 4) if b else 0.0
    return dict(sorted(out.items()))


def _line_dict(x: EdgeLine | None) -> dict[str, Any] | None:
    if x is None:
        return None
    return {"edge": x.edge, "status": x.status, "aborted": x.aborted, "cache": x.cache, "tier": x.tier,
            "bytes": x.size_bytes, "ms": x.ms, "up_ms": x.up_ms}


def segment_rows(joined: Joined, segments: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """One row per video request: the client's throughput (and, given the session's `SegmentRecord`s, the
    buffer before and after) beside the edge's answer. Without segment records the buffer is the CMCD
    ``bl`` the request carried."""
    rows = []
    reqs = joined.session.requests
    for i, r in enumerate(reqs):
        if r.ot != "v":
            continue
        line = joined.lines[i]
        dur = r.end_s - r.start_s
        row: dict[str, Any] = {"key": r.key, "range": r.range, "start_s": round(r.start_s, 3),
                               "end_s": round(r.end_s, 3), "size_bytes": r.size_bytes, "complete": r.complete,
                               "throughput_bps": round(8 * r.size_bytes / dur) if dur > 0 else None,
                               "buffer_s": None if line is None or line.bl_ms is None else line.bl_ms / 1000}
        seg = _segment_for(r, segments)
        if seg is not None:
            row.update(index=seg.index, rung=seg.rung, bitrate_bps=seg.bitrate_bps,
                       buffer_before_s=round(seg.buffer_before_s, 3), buffer_after_s=round(seg.buffer_after_s, 3))
        row["edge"] = _line_dict(line)
        rows.append(row)
    return rows


def _segment_for(r: ClientRequest, segments: Sequence[Any]) -> Any:
    """The segment record a video request delivered: the one whose download ended with it."""
    best, gap = None, 0.25
    for s in segments:
        d = abs(s.done_s - r.end_s)
        if d < gap and s.requested_s <= r.start_s + 1e-6:
            best, gap = s, d
    return best


def _attribution_dict(a: StallAttribution, s: JoinSession, joined: Joined) -> dict[str, Any]:
    waited = list(a.waited_on)
    if a.deciding is not None and a.deciding in waited:  # the deciding one first, then the latest
        waited.remove(a.deciding)
        waited = [a.deciding] + sorted(waited, key=lambda i: -s.requests[i].end_s)
    return {"at_s": round(a.stall.at_s, 3), "duration_s": round(a.stall.duration_s, 3), "cause": a.cause.value,
            "reason": a.reason,
            "waited_on": [{"ot": s.requests[i].ot, "key": s.requests[i].key, "range": s.requests[i].range,
                           "start_s": round(s.requests[i].start_s, 3), "end_s": round(s.requests[i].end_s, 3),
                           "deciding": i == a.deciding, "edge": _line_dict(joined.lines[i])}
                          for i in waited[:MAX_WAITED]],
            "failovers": [{"at_s": s.failovers[k].at_s, "cause": s.failovers[k].cause} for k in a.failovers]}


def joined_section(joined: Sequence[Joined], *, files: list[dict[str, Any]], note: str | None = None,
                   segments: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """The report's ``joined`` section: stall seconds by cause (in all, per device, per network), the
    per-session attributions (at most `MAX_SESSIONS` sessions with stalls, `MAX_STALLS` each), matched and
    unmatched requests, hit ratios by device and network, the files read and a note (why lines may be
    missing). With ``segments`` (session id -> its `SegmentRecord`s), per-segment rows too."""
    attributions = {j.session.session_id: attribute(j) for j in joined}
    every = [a for v in attributions.values() for a in v]
    by_device: dict[str, list[StallAttribution]] = {}
    by_network: dict[str, list[StallAttribution]] = {}
    for j in joined:
        by_device.setdefault(j.session.device, []).extend(attributions[j.session.session_id])
        by_network.setdefault(j.session.network, []).extend(attributions[j.session.session_id])
    client = sum(len(j.lines) for j in joined)
    matched = sum(j.matched for j in joined)
    by_ot: dict[str, dict[str, int]] = {}
    for j in joined:
        for r, x in zip(j.session.requests, j.lines):
            row = by_ot.setdefault(r.ot or "-", {"requests": 0, "matched": 0})
            row["requests"] += 1
            row["matched"] += x is not None
    sessions = []
    for j in joined:
        atts = attributions[j.session.session_id]
        entry: dict[str, Any] = {"session_id": j.session.session_id, "device": j.session.device,
                                 "network": j.session.network, "requests": len(j.lines), "matched": j.matched,
                                 "unmatched": j.unmatched, "edge_lines": len(j.all_lines),
                                 "stalls": [_attribution_dict(a, j.session, j) for a in atts[:MAX_STALLS]]}
        if segments is not None and j.session.session_id in segments:
            entry["segments"] = segment_rows(j, segments[j.session.session_id])
        if atts or segments is not None:
            sessions.append(entry)
    stalled = sum(1 for j in joined if attributions[j.session.session_id])
    return {
        "files": files, "note": note, "rules": {c.value: CAUSE_RULES[c] for c in Cause},
        "requests": {"sessions": len(joined), "client": client, "matched": matched, "unmatched": client - matched,
                     "not_to_edges": sum(j.session.not_to_edges for j in joined),
                     "edge_lines": sum(len(j.all_lines) for j in joined),
                     "edge_lines_unmatched": sum(len(j.extra) for j in joined), "by_ot": dict(sorted(by_ot.items()))},
        "stalls": {"count": len(every), "seconds": round(sum(a.stall.duration_s for a in every), 3),
                   "sessions": stalled, "by_cause": stall_totals(every),
                   "by_device": {k: stall_totals(v) for k, v in sorted(by_device.items())},
                   "by_network": {k: stall_totals(v) for k, v in sorted(by_network.items())}},
        "hit_ratio": {"by_device": hit_ratios(joined, "device"), "by_network": hit_ratios(joined, "network"),
                      "by_behaviour": hit_ratios(joined, "behaviour")},
        "sessions": sessions[:MAX_SESSIONS], "sessions_listed": min(len(sessions), MAX_SESSIONS),
        "sessions_with_stalls": stalled,
    }
