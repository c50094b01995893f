"""Steered copies of stored manifests, for the steering service: one copy per content-steering pathway.

Pure text in, text out. The stored ``master.m3u8`` is read into the ``hls.py`` view
(``loads_multivariant``, through ``m3u8``), copied per pathway by ``hls.steer_multivariant`` (the
same cloning ``multivariant_from_title(pathways=…)`` uses) and written back by
``dumps_multivariant``. The stored ``manifest.mpd`` is steered by ``steer_mpd_text``: its
MPD-level ``BaseURL``s become one ``BaseURL serviceLocation=…`` per pathway (the same
``{edge}/t/{token}/{title}/`` prefixes) and it gains the ``ContentSteering`` element (DASH-IF CTS
001); every path inside stays relative to them.

For each pathway, in the order given (rfc8216bis §4.4.6.6, the HLS content-steering rules):

* every ``EXT-X-STREAM-INF`` and ``EXT-X-I-FRAME-STREAM-INF`` is repeated with ``PATHWAY-ID`` and a
  ``STABLE-VARIANT-ID`` that is the same on every pathway and distinct inside one (kept if the
  stored playlist has one, else made from the URI: ``video/v90/index.m3u8`` -> ``video/v90``, with
  ``+{audio group}`` when one URI is offered with several groups);
* every ``EXT-X-MEDIA`` group is repeated as ``{group}@{pathway}`` (the variants of that pathway
  name it), with a ``STABLE-RENDITION-ID`` shared across pathways (kept, or made from the URI);
* relative URIs are put under the pathway's ``uri_prefix`` (``{edge}/t/{token}/{title}/``), as
  stored, so a versioned title's ``v/{version}/…`` paths stay as they are;
* ``EXT-X-CONTENT-STEERING`` names the steering server and the pathway to start with.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from .dash import DashSteering, MpdError, ServiceLocation, set_steering
from .dash_read import loads_mpd, parse_mpd_document
from .hls import (ContentSteering, Multivariant, Pathway, PlaylistError, dumps_multivariant, loads_multivariant,
                  steer_multivariant)


@dataclass(frozen=True, kw_only=True)
class EdgePathway:
    """A pathway served by an edge: its id and base URL (``http://host:port``)."""

    id: str
    url: str

    def prefix(self, *, token: str, title: str) -> str:
        """``{url}/t/{token}/{title}/``: what every stored relative path goes under on this edge."""
        return f"{self.url.rstrip('/')}/t/{token}/{title}/"

    def pathway(self, *, token: str, title: str) -> Pathway:
        """The pathway whose URIs are ``{url}/t/{token}/{title}/{uri as stored}``."""
        return Pathway(id=self.id, uri_prefix=self.prefix(token=token, title=title))


def loads_steerable(text: str) -> Multivariant:
    """The stored multivariant playlist ``text`` as a view, refusing what cannot be steered."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if first != "#EXTM3U":
        raise PlaylistError("not an HLS playlist (no #EXTM3U first line)")
    if any(ln.startswith(("#EXTINF", "#EXT-X-TARGETDURATION")) for ln in text.splitlines()):
        raise PlaylistError("a media playlist, not a multivariant one")
    try:
        mv = loads_multivariant(text)
    except (ValueError, TypeError, AttributeError) as e:
        raise PlaylistError(f"cannot read the multivariant playlist: {e}") from None
    if mv.steering is not None:
        mv = replace(mv, steering=None)
    return mv


def steer_multivariant_text(stored: str, pathways: Sequence[EdgePathway], *, token: str, title: str,
                            server_uri: str, initial_pathway: str | None = None) -> str:
    """The steered copy of the stored ``master.m3u8`` text, each pathway on its edge."""
    if not pathways:
        raise PlaylistError("no pathway to steer to")
    steering = ContentSteering(server_uri=server_uri, pathway_id=initial_pathway or pathways[0].id)
    mv = steer_multivariant(loads_steerable(stored), [p.pathway(token=token, title=title) for p in pathways],
                            steering=steering)
    return dumps_multivariant(mv)


def steer_mpd_text(stored: str | bytes, pathways: Sequence[EdgePathway], *, token: str, title: str,
                   server_uri: str, initial_pathway: str | None = None) -> str:
    """The steered copy of the stored ``manifest.mpd``: a service location per pathway, content steering."""
    if not pathways:
        raise MpdError("MPD: no pathway to steer to")
    loads_mpd(stored)  # the whole MPD must be one we can play (bounded, static, addressed)
    doc = parse_mpd_document(stored)
    steering = DashSteering(
        locations=tuple(ServiceLocation(id=p.id, url=p.prefix(token=token, title=title)) for p in pathways),
        server_uri=server_uri, default_location=initial_pathway or pathways[0].id)
    set_steering(doc, steering)
    text: bytes = doc.toxml(encoding="UTF-8")
    return text.decode("utf-8") + "\n"


__all__ = ["EdgePathway", "loads_steerable", "steer_mpd_text", "steer_multivariant_text"]
