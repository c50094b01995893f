"""What the tiers hold: an object's metadata and cached parts (a whole object or one slice of it).

The cache key of an object is ``{title}/{path}`` (never the token); a slice of a large object is
cached under ``{title}/{path}|s{slice_bytes}:{n}``, so the slice size is part of the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from httpsem.semantics import ResponsePlan


@dataclass(frozen=True, kw_only=True)
class ObjectMeta:
    """An object as its upstream described it."""

    key: str
    size_bytes: int
    etag: str  # unquoted
    last_modified_s: float
    max_age_s: float
    sliced: bool = False
    stale_while_revalidate_s: float | None = None
    """From the upstream's ``Cache-Control: stale-while-revalidate=N``; None: the edge's default."""
    stale_if_error_s: float | None = None
    """From the upstream's ``Cache-Control: stale-if-error=N``; None: the edge's default."""

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "size_bytes": self.size_bytes, "etag": self.etag,
                "last_modified_s": self.last_modified_s, "max_age_s": self.max_age_s, "sliced": self.sliced,
                "stale_while_revalidate_s": self.stale_while_revalidate_s, "stale_if_error_s": self.stale_if_error_s}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> "ObjectMeta":
        return cls(key=str(d["key"]), size_bytes=_integer(d["size_bytes"]), etag=str(d["etag"]),
                   last_modified_s=_number(d["last_modified_s"]), max_age_s=_number(d["max_age_s"]),
                   sliced=bool(d["sliced"]), stale_while_revalidate_s=_seconds(d.get("stale_while_revalidate_s")),
                   stale_if_error_s=_seconds(d.get("stale_if_error_s")))


def _number(value: object) -> float:
    """A number of a JSON sidecar; TypeError for anything else (the reader drops the entry)."""
    if not isinstance(value, (int, float, str)):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _integer(value: object) -> int:
    if not isinstance(value, (int, float, str)):
        raise TypeError(f"not a number: {value!r}")
    return int(value)


def _seconds(value: object) -> float | None:
    return None if value is None else _number(value)


@dataclass(frozen=True, kw_only=True)
class CachedPart:
    """Bytes ``[base_bytes, base_bytes + len(body))`` of an object, fetched at ``fetched_at_s`` (wall clock)."""

    meta: ObjectMeta
    base_bytes: int
    body: bytes
    fetched_at_s: float
    plans: dict[str, ResponsePlan] = field(default_factory=dict, init=False, repr=False, compare=False)
    """The serving path's memo for plain requests: response plans by method (``serve.py``). A part never
    changes; a refreshed or replaced one is a new object with empty memos."""
    fast_heads: dict[str, tuple[bytes, ResponsePlan]] = field(default_factory=dict, init=False, repr=False,
                                                              compare=False)
    """The fast path's memo: the encoded head of a plain answer and its plan, by method (``fastpath.py``)."""
    cmsd_static: list[bytes] = field(default_factory=list, init=False, repr=False, compare=False)
    """The fast path's memo of this part's ``CMSD-Static`` header line (empty until the first answer)."""

    @property
    def nbytes(self) -> int:
        return len(self.body)

    def refreshed(self, meta: ObjectMeta, fetched_at_s: float) -> "CachedPart":
        return replace(self, meta=meta, fetched_at_s=fetched_at_s)


def slice_key(key: str, slice_bytes: int, n: int) -> str:
    """Cache key of slice ``n`` of object ``key``."""
    return f"{key}|s{slice_bytes}:{n}"


def object_key_of(cache_key: str) -> str:
    """The object key a cache key belongs to (itself, or the object a slice is cut from)."""
    return cache_key.split("|", 1)[0]
