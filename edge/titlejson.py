"""Which objects make up a title, read from its ``title.json`` (``vodstack-title/1``): the prefill list.

Pure: takes the parsed JSON, returns object paths relative to the title, deduplicated in the order a
player needs them (master, then per track: playlist, init, segments). A byte-range layout lists the
same file once per range; it appears once here, and prefill fills all of its slices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from httpsem.keys import InvalidKey, validate_key


@dataclass(frozen=True)
class PrefillItem:
    path: str                 # relative to the title
    size_bytes: int | None    # expected size when title.json says (a byte-range file: the end of its last range)


class TitleJsonError(ValueError):
    """title.json is not a vodstack title catalogue."""


def prefill_items(doc: Any, title: str) -> list[PrefillItem]:
    if not isinstance(doc, dict) or not str(doc.get("format", "")).startswith("vodstack-title/"):
        raise TitleJsonError(f"{title}/title.json: not a vodstack-title document")
    sizes: dict[str, int | None] = {}

    def add(path: Any, size: Any = None, offset: Any = None) -> None:
        if not isinstance(path, str) or not path:
            return
        try:
            validate_key(f"{title}/{path}")
        except InvalidKey as e:
            raise TitleJsonError(f"{title}/title.json: bad path {path!r}: {e}") from None
        end = None
        if isinstance(size, int) and not isinstance(size, bool):
            end = size + (offset if isinstance(offset, int) and not isinstance(offset, bool) else 0)
        if path not in sizes:
            sizes[path] = end
        elif end is not None:
            prev = sizes[path]
            sizes[path] = end if prev is None else max(prev, end)

    add("master.m3u8")
    for group in ("video", "audio", "subtitles"):
        for track in doc.get(group) or []:
            if not isinstance(track, dict):
                continue
            add(track.get("playlist"))
            init = track.get("init")
            if isinstance(init, dict):
                add(init.get("path"), init.get("size_bytes"), init.get("offset_bytes"))
            for seg in track.get("segments") or []:
                if isinstance(seg, dict):
                    add(seg.get("path"), seg.get("size_bytes"), seg.get("offset_bytes"))
    for track in doc.get("iframes") or []:
        if isinstance(track, dict):
            add(track.get("playlist"))
    return [PrefillItem(p, s) for p, s in sizes.items()]
