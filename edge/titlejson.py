"""Which objects make up a title, read from its ``title.json`` (``vodstack-title/1``): the prefill list.

Pure: ``read_title`` parses the text into a ``manifests.Title`` (``manifests.loads_title``);
``prefill_items`` takes that ``Title`` and returns object paths relative to the title, deduplicated
in the order a player needs them (master, then per track: playlist, init, segments). A byte-range
layout lists the same file once per range; it appears once here, and prefill fills all of its slices.
"""
from __future__ import annotations

from dataclasses import dataclass

from httpsem.keys import InvalidKey, validate_key
from manifests import Title, TitleFormatError, loads_title


@dataclass(frozen=True)
class PrefillItem:
    path: str                 # relative to the title
    size_bytes: int | None    # expected size when title.json says (a byte-range file: the end of its last range)


class TitleJsonError(ValueError):
    """title.json is not a vodstack title catalogue."""


def read_title(body: str | bytes, title: str) -> Title:
    """The ``Title`` of ``{title}/title.json``; TitleJsonError (one line) if it is not one."""
    try:
        return loads_title(body)
    except TitleFormatError as e:
        raise TitleJsonError(f"{title}/title.json: not a vodstack-title document ({e})") from None


def prefill_items(doc: Title, title: str) -> list[PrefillItem]:
    sizes: dict[str, int | None] = {}

    def add(path: str, size: int | None = None, offset: int | None = None) -> None:
        if not path:
            return
        try:
            validate_key(f"{title}/{path}")
        except InvalidKey as e:
            raise TitleJsonError(f"{title}/title.json: bad path {path!r}: {e}") from None
        end = None if size is None else size + (offset or 0)
        if path not in sizes:
            sizes[path] = end
        elif end is not None:
            prev = sizes[path]
            sizes[path] = end if prev is None else max(prev, end)

    add("master.m3u8")
    for track in doc.media_tracks():
        add(track.playlist)
        add(track.init.path, track.init.size_bytes, track.init.offset_bytes)
        for seg in track.segments:
            add(seg.path, seg.size_bytes, seg.offset_bytes)
    for sub in doc.subtitles:
        add(sub.playlist)
        for seg in sub.segments:
            add(seg.path, seg.size_bytes, seg.offset_bytes)
    for iframes in doc.iframes:
        add(iframes.playlist)
    return [PrefillItem(p, s) for p, s in sizes.items()]
