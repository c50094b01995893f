"""Resolve a session's multivariant playlist: directly, or through the steering service's ``/play``.

``GET {steering}/play/{title}?device=&region=&session=`` answers the steered multivariant URL,
the content-steering URI and a fallback (the chosen edge's own playlist), which is used when the
steered playlist cannot be fetched. `resolve_master` returns the parsed multivariant, the URL it
was finally read from (the base of every relative URI) and the steering URI, if any.
"""
from __future__ import annotations

import logging
from typing import Any

from .context import SessionContext
from .errors import PlaybackError
from .fetch import resolve_via_steering
from .dash import looks_like_mpd, presentation_from_mpd
from .playlists import MultivariantPlaylist, Variant, fetch_text, parse_media, parse_multivariant, resolve

__all__ = ["resolve_master"]

log = logging.getLogger("client.session")


async def resolve_master(ctx: SessionContext, *, master_url: str | None, steering_url: str | None,
                         title: str | None, device: str, region: str | None) -> tuple[Any, str, str | None]:
    """``(multivariant, its final URL, steering URI or None)`` for the session."""
    fallback: str | None = None
    steering_uri: str | None = None
    if master_url is None:
        answer = await resolve_via_steering(ctx.fetcher, steering_url or "", title or "", device=device,
                                            region=region, session=ctx.session_id, format=ctx.config.format)
        master_url, fallback, steering_uri = answer.multivariant_url, answer.fallback_url, answer.steering_uri
    limits = ctx.config.limits
    try:
        master, final = await _load(ctx, master_url)
    except PlaybackError as e:
        if not fallback:
            raise
        log.warning("steered playlist failed, using the edge's", extra={"kv": {"error": str(e)}})
        master, final = await _load(ctx, fallback)
    if not steering_uri and master.steering_uri:
        steering_uri = resolve(final, master.steering_uri)
    return master, final, steering_uri


async def _load(ctx: SessionContext, url: str) -> tuple[MultivariantPlaylist, str]:
    """The multivariant view of the HLS playlist or DASH MPD at ``url`` (an MPD's Representations
    go into ``ctx.playlists``: nothing more is fetched for them)."""
    limits = ctx.config.limits
    text, final = await fetch_text(ctx.fetcher, url, limits)
    if looks_like_mpd(text):
        presentation = presentation_from_mpd(text, final)
        ctx.playlists.update(presentation.playlists)
        ctx.manifest_format = "dash"
        return presentation.multivariant, final
    if "#EXT-X-STREAM-INF" not in text and "#EXTINF" in text:
        return _single_variant(ctx, text, final), final
    if ctx.cache is None:
        return parse_multivariant(text, final, limits), final
    return ctx.cache.get_or_parse("multivariant", text, lambda: parse_multivariant(text, final, limits)), final


def _single_variant(ctx: SessionContext, text: str, url: str) -> MultivariantPlaylist:
    """A media playlist given as the target (as hls.js plays one): a multivariant view of one
    variant, the playlist itself (kept in ``ctx.playlists``: it is not fetched again). Its
    BANDWIDTH is the playlist's own rate when every segment has a byte range, else unknown (1 bps:
    with one rung the ABR has nothing to choose)."""
    media = parse_media(text, url, ctx.config.limits)
    ctx.playlists[url] = (media, url)
    sizes = media.sizes_bytes()
    bps = max(1, round(8 * sum(sizes) / media.duration_s)) if sizes else 1
    variant = Variant(uri=url, bandwidth_bps=bps, average_bandwidth_bps=None, codecs=(), width=None, height=None,
                      frame_rate=None, video_range="SDR", audio_group=None, subtitles_group=None)
    return MultivariantPlaylist(variants=(variant,), renditions=())
