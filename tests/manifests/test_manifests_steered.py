"""Steered copies: the stored multivariant, steered, names per pathway every variant and rendition of the title."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifest_samples import ids, titles
from manifests import (EdgePathway, Pathway, PlaylistError, dumps_multivariant, loads_multivariant,
                       multivariant_from_title, steer_multivariant_text, version_prefix, with_path_prefix)

TOKEN = "eyJlIjoxfQ.c2ln"
VERSION = "0123456789abcdef"


def _unsteered(item, prefix: str):
    """A steered variant or rendition as it was stored: its pathway's prefix and group suffix taken off."""
    assert item.uri is None or item.uri.startswith(prefix), (item.uri, prefix)
    uri = None if item.uri is None else item.uri[len(prefix):]
    if hasattr(item, "group_id"):
        return replace(item, uri=uri, group_id=item.group_id.rsplit("@", 1)[0], stable_rendition_id=None)
    out = replace(item, uri=uri, pathway_id=None, stable_variant_id=None)
    if hasattr(out, "audio_group"):
        out = replace(out, audio_group=out.audio_group and out.audio_group.rsplit("@", 1)[0],
                      subtitles_group=out.subtitles_group and out.subtitles_group.rsplit("@", 1)[0])
    return out


@settings(max_examples=80, deadline=None)
@given(titles(), st.lists(ids, min_size=1, max_size=3, unique=True), st.booleans())
def test_steered_multivariant_names_every_variant_and_rendition_per_pathway(title, pathway_ids, versioned):
    """The steered multivariant from the model names, per pathway, every variant and rendition of the
    title with the same attributes; URIs keep ``v/{version}/``; stable ids agree across pathways."""
    if versioned:
        title = replace(with_path_prefix(title, version_prefix(VERSION)), version=VERSION)
    model = multivariant_from_title(title)
    stored = dumps_multivariant(model)
    edges = [EdgePathway(id=p, url=f"http://{p}.example:80{i}") for i, p in enumerate(pathway_ids)]
    text = steer_multivariant_text(stored, edges, token=TOKEN, title=title.title, server_uri="http://s/steer/x",
                                   initial_pathway=pathway_ids[-1])
    steered = loads_multivariant(text)
    assert steered.steering is not None and steered.steering.pathway_id == pathway_ids[-1]
    stable = None
    for edge in edges:
        prefix = f"{edge.url}/t/{TOKEN}/{title.title}/"
        mine = [v for v in steered.variants if v.pathway_id == edge.id]
        iframes = [v for v in steered.iframe_variants if v.pathway_id == edge.id]
        media = [m for m in steered.media if m.group_id.endswith(f"@{edge.id}")]
        assert [_unsteered(v, prefix) for v in mine] == list(model.variants)
        assert [_unsteered(v, prefix) for v in iframes] == list(model.iframe_variants)
        assert [_unsteered(m, prefix) for m in media] == list(model.media)
        groups = {m.group_id for m in media}
        assert all(v.audio_group in groups for v in mine if v.audio_group)
        assert all(v.subtitles_group in groups for v in mine if v.subtitles_group)
        if versioned:
            assert all(v.uri.startswith(prefix + version_prefix(VERSION)) for v in (*mine, *iframes, *media))
        ids_here = ([v.stable_variant_id for v in (*mine, *iframes)], [m.stable_rendition_id for m in media])
        assert len(set(ids_here[0])) == len(ids_here[0]) and None not in ids_here[0] + ids_here[1]
        stable = stable or ids_here
        assert ids_here == stable


@settings(max_examples=40, deadline=None)
@given(titles(), st.lists(ids, min_size=1, max_size=3, unique=True))
def test_steering_the_stored_text_is_steering_the_model(title, pathway_ids):
    """Steering the stored text gives the model's own steered view, but for the stable ids (made from
    URIs when the stored text has none, from track ids in the model)."""
    edges = [EdgePathway(id=p, url=f"http://{p}.example") for p in pathway_ids]
    pathways = [e.pathway(token=TOKEN, title=title.title) for e in edges]
    from_text = loads_multivariant(steer_multivariant_text(
        dumps_multivariant(multivariant_from_title(title)), edges, token=TOKEN, title=title.title,
        server_uri="http://s/steer/x"))
    from_model = multivariant_from_title(title, pathways=pathways, steering=from_text.steering)

    def unstable(mv):
        return replace(mv, variants=tuple(replace(v, stable_variant_id=None) for v in mv.variants),
                       iframe_variants=tuple(replace(v, stable_variant_id=None) for v in mv.iframe_variants),
                       media=tuple(replace(m, stable_rendition_id=None) for m in mv.media))

    assert unstable(from_text) == unstable(from_model)
    assert all(isinstance(p, Pathway) for p in pathways)


@pytest.mark.parametrize("text", [
    "", "hello", "#EXTM3U\n", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.m4s\n",
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",
])
def test_what_cannot_be_steered_is_one_error(text):
    with pytest.raises(PlaylistError):
        steer_multivariant_text(text, [EdgePathway(id="a", url="http://a")], token=TOKEN, title="t",
                                server_uri="http://s")
