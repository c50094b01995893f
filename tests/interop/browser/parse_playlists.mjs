// hls.js's own playlist parser (M3U8Parser, exported by hls.js's ESM build) over our playlists.
//
// stdin:  [{"kind": "multivariant"|"steered"|"media"|"iframe"|"subtitle", "url": U, "text": T}, ...]
// stdout: [{"kind", "url", "ok", "error", ...what hls.js understood}, ...] (one JSON document)
//
// hls.js is lenient: it rarely throws. What it understood is returned so that the Python test
// compares it with what we wrote (variants, pathways, groups, segments, byte ranges, durations).
import { M3U8Parser, PlaylistLevelType } from 'hls.js';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const playlists = JSON.parse(Buffer.concat(chunks).toString('utf8'));

function multivariant(p) {
  if (M3U8Parser.isMediaPlaylist(p.text)) throw new Error('hls.js reads it as a media playlist');
  const parsed = M3U8Parser.parseMasterPlaylist(p.text, p.url);
  if (parsed.playlistParsingError) throw parsed.playlistParsingError;
  const media = M3U8Parser.parseMasterPlaylistMedia(p.text, p.url, parsed);
  const track = (t) => ({groupId: t.groupId, lang: t.lang, name: t.name, url: t.url, default: t.default});
  return {
    levels: parsed.levels.map((l) => ({
      url: l.url, bitrate: l.bitrate, width: l.width, height: l.height, videoCodec: l.videoCodec,
      audioCodec: l.audioCodec, pathwayId: l.attrs['PATHWAY-ID'] || null,
      stableVariantId: l.attrs['STABLE-VARIANT-ID'] || null,
      audioGroups: l.audioGroups || (l.attrs.AUDIO ? [l.attrs.AUDIO] : []),
      subtitleGroups: l.subtitleGroups || (l.attrs.SUBTITLES ? [l.attrs.SUBTITLES] : []),
    })),
    iframeLevels: (parsed.iframeVariants || parsed.iframeLevels || []).map((l) => ({url: l.url})),
    contentSteering: parsed.contentSteering || null,
    audio: (media.AUDIO || []).map(track),
    subtitles: (media.SUBTITLES || []).map(track),
  };
}

function mediaPlaylist(p) {
  if (!M3U8Parser.isMediaPlaylist(p.text)) throw new Error('hls.js does not read it as a media playlist');
  const type = p.kind === 'subtitle' ? PlaylistLevelType.SUBTITLE : PlaylistLevelType.MAIN;
  const details = M3U8Parser.parseLevelPlaylist(p.text, p.url, 0, type, 0, null);
  if (details.playlistParsingError) throw details.playlistParsingError;
  return {
    endList: details.endList, live: details.live, type: details.type, iframesOnly: !!details.iframesOnly,
    targetduration: details.targetduration, totalduration: details.totalduration,
    fragments: details.fragments.map((f) => ({
      url: f.url, duration: f.duration, start: f.start,
      byteRange: f.byteRange && f.byteRange.length ? f.byteRange : null,
      initUrl: f.initSegment ? f.initSegment.url : null,
      initByteRange: f.initSegment && f.initSegment.byteRange && f.initSegment.byteRange.length ? f.initSegment.byteRange : null,
    })),
  };
}

const out = playlists.map((p) => {
  try {
    const value = p.kind === 'multivariant' || p.kind === 'steered' ? multivariant(p) : mediaPlaylist(p);
    return {kind: p.kind, url: p.url, ok: true, ...value};
  } catch (e) {
    return {kind: p.kind, url: p.url, ok: false, error: String(e && e.message ? e.message : e)};
  }
});
process.stdout.write(JSON.stringify(out));
