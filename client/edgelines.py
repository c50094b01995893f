"""The edges' access-log lines as the joined report reads them: `parse_line` (pure) and `read_edge_logs`.

* `parse_line(text, edge)` -> `EdgeLine` | None: one ``edge.access`` request line (``edge/accesslog.py``)::

      2026-12-04T20:37:41 INFO edge.access GET /t/<token>/<title>/<path> status=200 cache=miss tier=fill
          bytes=2000 ms=12.3 range=- peer=127.0.0.1 via=- sid=load0000-000001 ot=v bl=12300 br=3200
          mtp=25400 su=- bs=- up_ms=10.2

  Anything else (another logger, an admin path, a mangled line) is None. The object key is the path
  after ``/t/<token>/``; ``status=200-aborted`` is status 200, ``aborted``.
* `object_key(url)`: that key of a client's URL (redacted token or not); `edge_name(path)`: the edge of a
  log file (``logs/EDGE.access.log``).
* `read_edge_logs(paths, sids, offsets)`: the one I/O here: the lines of the sessions ``sids`` that the
  files gained since ``offsets``, read line by line (``client/edgelogs.py`` is the shell that waits).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, urlsplit

__all__ = ["LOGGER", "EdgeLine", "parse_line", "edge_name", "object_key", "read_edge_logs"]

LOGGER = "edge.access"


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeLine:
    """One edge.access request line. ``ms``/``up_ms`` wall clock; CMCD keys None when not sent."""

    edge: str
    method: str
    key: str          #: the object key (``{title}/{path}``)
    range: str        #: the Range header, "" for none
    status: int
    aborted: bool
    cache: str
    tier: str
    size_bytes: int
    ms: float
    up_ms: float
    sid: str          #: "" when the request carried no CMCD sid
    ot: str = ""
    bl_ms: int | None = None
    br_kbps: int | None = None
    mtp_kbps: int | None = None
    su: bool = False
    bs: bool = False
    at: str = ""      #: the line's timestamp (whole seconds, local time)


# --- parsing -----------------------------------------------------------------------------------

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
_TOKEN_PATH = re.compile(r"/t/[^/]+/(.+)")


def edge_name(path: str | Path) -> str:
    """``edge-a`` for ``logs/edge-a.access.log`` (else the file's stem)."""
    name = Path(path).name
    return name[: -len(".access.log")] if name.endswith(".access.log") else Path(name).stem


def object_key(url: str) -> str | None:
    """The object key of an edge URL or path: what follows ``/t/<token>/`` (a redacted token too); None
    for a URL that is not an edge object's."""
    m = _TOKEN_PATH.fullmatch(unquote(urlsplit(url).path))
    return m.group(1) if m else None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _opt_int(value: str | None) -> int | None:
    if value is None or value in ("", "-"):
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_line(text: str, edge: str) -> EdgeLine | None:
    """One access-log line as an `EdgeLine`; None for anything that is not an edge.access object request."""
    parts = text.rstrip("\n").split(" ", 4)
    if len(parts) < 5 or parts[2] != LOGGER:
        return None
    at, method, rest = parts[0], parts[3], parts[4]
    cut = rest.find(" status=")
    if cut < 0:
        return None
    m = _TOKEN_PATH.fullmatch(rest[:cut])
    if m is None:
        return None
    fields = {k: _unquote(v) for k, v in _FIELD.findall(rest[cut + 1:])}
    status_text = fields.get("status", "")
    aborted = status_text.endswith("-aborted")
    try:
        status = int(status_text.removesuffix("-aborted"))
        size = int(fields["bytes"])
        ms = float(fields["ms"])
        up_ms = float(fields.get("up_ms") or 0.0)
    except (KeyError, ValueError):
        return None
    rng = fields.get("range", "-")
    sid = fields.get("sid", "-")
    ot = fields.get("ot", "-")
    return EdgeLine(edge=edge, method=method, key=m.group(1), range="" if rng == "-" else rng, status=status,
                    aborted=aborted, cache=fields.get("cache", ""), tier=fields.get("tier", ""), size_bytes=size,
                    ms=ms, up_ms=up_ms, sid="" if sid == "-" else sid, ot="" if ot == "-" else ot,
                    bl_ms=_opt_int(fields.get("bl")), br_kbps=_opt_int(fields.get("br")),
                    mtp_kbps=_opt_int(fields.get("mtp")), su=fields.get("su") == "1", bs=fields.get("bs") == "1",
                    at=at)


def read_edge_logs(paths: Iterable[str | Path], sids: set[str], offsets: Mapping[str, int] | None = None
                   ) -> tuple[list[EdgeLine], list[dict[str, Any]]]:
    """The lines of ``paths`` whose sid is in ``sids`` (each file read from its byte in ``offsets``, whole
    lines only), and per file: path, edge, first byte read, bytes read, lines kept. Unreadable files are
    listed with their error."""
    lines: list[EdgeLine] = []
    files: list[dict[str, Any]] = []
    for path in paths:
        start = (offsets or {}).get(str(path), 0)
        info: dict[str, Any] = {"path": str(path), "edge": edge_name(path), "from_byte": start}
        kept = read = 0
        edge = info["edge"]
        try:
            with open(path, "rb") as f:  # line by line: a long run's log is never held whole
                f.seek(start)
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break  # a line being written is read next time
                    read += len(raw)
                    if b" edge.access " not in raw:
                        continue
                    line = parse_line(raw.decode("utf-8", "replace").rstrip("\r\n"), edge)
                    if line is not None and line.sid in sids:
                        lines.append(line)
                        kept += 1
        except OSError as e:
            files.append({**info, "error": e.strerror or str(e)})
            continue
        files.append({**info, "bytes": read, "lines": kept})
    return lines, files


# --- sessions ----------------------------------------------------------------------------------
