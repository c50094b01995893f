// The watch page's DASH players: dash.js and Shaka Player (both from npm, served under
// /static/vendor/), each behind the same small adapter the page's panel and tests read.
//
// Both do DASH content steering from the steered MPD (ContentSteering + one BaseURL per edge,
// serviceLocation = the edge's name): when the serving edge dies they retry, then move to the
// next service location, and they re-ask /steer every TTL.
//
// adapter = {name, version, audioTracks(), currentAudio(), subtitleTracks(), currentSubtitle(),
//            pickAudio(lang), pickSubtitles(lang | 'off'), level(), pathwayPriority()}
// hooks   = {lang(code), fragment(type, url), error(type, details, fatal, url), ready()}
//
// cfg.cmcd ('query' | 'header' | ''): each player's own CMCD with sid cfg.cmcd_sid, cid the title.
(function () {
  'use strict';

  // main | audio | subtitle, from our layout's paths (video/…, audio/…, subs/…)
  function typeOfUrl(url) {
    const path = String(url || '').split('?')[0];
    if (/\/video\/[^/]+\/[^/]+$/.test(path)) return 'main';
    if (/\/audio\/[^/]+\/[^/]+$/.test(path)) return 'audio';
    if (/\/subs\/[^/]+\/[^/]+$/.test(path)) return 'subtitle';
    return '';
  }

  // -- dash.js ---------------------------------------------------------------------------------

  function dashjsPlayer(url, video, cfg, hooks) {
    const player = window.dashjs.MediaPlayer().create();
    player.initialize();  // before any setting: dash.js throws on calls to a player not initialized
    const E = window.dashjs.MediaPlayer.events;
    let priority = [];
    const settings = {
      streaming: {
        applyContentSteering: true,
        text: {defaultEnabled: !!cfg.subs && cfg.subs !== 'off'},
        retryAttempts: {MediaSegment: 2, InitializationSegment: 2},
        retryIntervals: {MediaSegment: 250, InitializationSegment: 250},
      },
    };
    if (cfg.cmcd) {
      // dash.js 5.2.1 compares mode with Constants.CMCD_MODE_HEADERS, 'headers' (its index.d.ts says
      // 'header'): anything else is the query
      settings.streaming.cmcd = {enabled: true, sid: cfg.cmcd_sid, cid: cfg.title,
                                 mode: cfg.cmcd === 'header' ? 'headers' : 'query'};
    }
    if (cfg.buffer_s) {
      settings.streaming.buffer = {bufferTimeAtTopQuality: cfg.buffer_s, bufferTimeAtTopQualityLongForm: cfg.buffer_s,
                                   bufferToKeep: 30};
    }
    player.updateSettings(settings);
    if (cfg.audio) player.setInitialMediaSettingsFor('audio', {lang: cfg.audio});
    if (cfg.subs && cfg.subs !== 'off') player.setInitialMediaSettingsFor('text', {lang: cfg.subs});

    player.on(E.FRAGMENT_LOADING_COMPLETED, (e) => {
      const req = e.request || {};
      if (req.type !== 'MediaSegment' || !req.url) return;
      const type = {video: 'main', audio: 'audio', text: 'subtitle'}[req.mediaType] || typeOfUrl(req.url);
      hooks.fragment(type, req.url);
    });
    player.on(E.CONTENT_STEERING_REQUEST_COMPLETED, (e) => {
      const data = e.currentSteeringResponseData;
      if (data && data.pathwayPriority) priority = data.pathwayPriority.slice();
    });
    // a segment or init download that failed (17, 18, 26, 27, 28) is retried and then asked of the
    // next service location: noted, not fatal; anything else stops playback
    const RECOVERED = new Set([17, 18, 26, 27, 28]);
    player.on(E.ERROR, (e) => {
      const err = e.error || {};
      hooks.error('dash.js', `${err.code || ''} ${err.message || ''}`.trim(), !RECOVERED.has(err.code), '');
    });
    player.on(E.STREAM_INITIALIZED, () => {
      if (cfg.subs && cfg.subs !== 'off') adapter.pickSubtitles(cfg.subs);
      hooks.ready();
    });

    const tracks = (type) => player.getTracksFor(type) || [];
    const labelOf = (t) => (t.labels && t.labels.length ? t.labels[0].text : '') || t.lang || '';
    const adapter = {
      name: 'dash.js',
      version: window.dashjs.Version || (player.getVersion ? player.getVersion() : ''),
      audioTracks: () => tracks('audio').map((t, i) => ({index: i, lang: hooks.lang(t.lang), name: labelOf(t)})),
      currentAudio() {
        const cur = player.getCurrentTrackFor('audio');
        if (!cur) return null;
        const i = tracks('audio').findIndex((t) => t.id === cur.id && t.lang === cur.lang);
        return {index: i, lang: hooks.lang(cur.lang), name: labelOf(cur)};
      },
      subtitleTracks: () => tracks('text').map((t, i) => ({index: i, lang: hooks.lang(t.lang), name: labelOf(t)})),
      currentSubtitle() {
        const cur = player.getCurrentTrackFor('text');
        if (!cur || !player.isTextEnabled()) return null;
        const i = tracks('text').findIndex((t) => t.id === cur.id && t.lang === cur.lang);
        return {index: i, lang: hooks.lang(cur.lang), name: labelOf(cur)};
      },
      pickAudio(wanted) {
        const t = tracks('audio').find((a) => hooks.lang(a.lang) === hooks.lang(wanted));
        if (!t) return false;
        const cur = player.getCurrentTrackFor('audio');
        if (!cur || cur.id !== t.id || cur.lang !== t.lang) player.setCurrentTrack(t);
        return true;
      },
      pickSubtitles(wanted) {
        if (!wanted || wanted === 'off') { player.enableText(false); return true; }
        const i = tracks('text').findIndex((s) => hooks.lang(s.lang) === hooks.lang(wanted));
        if (i < 0) return false;
        player.enableText(true);
        player.setTextTrack(i);
        return true;
      },
      level() {
        const r = player.getCurrentRepresentationForType ? player.getCurrentRepresentationForType('video') : null;
        if (!r) return null;
        return {index: r.index, width: r.width, height: r.height, bitrate: r.bandwidth, videoCodec: r.codecs,
                audioCodec: '', url: '', host: '', pathway: ''};
      },
      pathwayPriority: () => priority.slice(),
    };
    player.setAutoPlay(true);
    player.attachView(video);
    player.attachSource(url);
    return adapter;
  }

  // -- Shaka Player ----------------------------------------------------------------------------

  function shakaPlayer(url, video, cfg, hooks) {
    const shaka = window.shaka;
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) throw new Error('Shaka Player does not support this browser');
    const player = new shaka.Player();
    const config = {
      streaming: {
        retryParameters: {maxAttempts: 3, baseDelay: 250, backoffFactor: 2, timeout: 4000},
        alwaysStreamText: true,
      },
      manifest: {retryParameters: {maxAttempts: 3, baseDelay: 250, backoffFactor: 2, timeout: 4000}},
    };
    if (cfg.audio) config.preferredAudioLanguage = cfg.audio;
    if (cfg.subs && cfg.subs !== 'off') config.preferredTextLanguage = cfg.subs;
    if (cfg.buffer_s) config.streaming.bufferingGoal = cfg.buffer_s;
    if (cfg.cmcd) {
      config.cmcd = {enabled: true, sessionId: cfg.cmcd_sid, contentId: cfg.title, useHeaders: cfg.cmcd === 'header'};
    }
    player.configure(config);
    player.getNetworkingEngine().registerResponseFilter((type, response) => {
      if (type !== shaka.net.NetworkingEngine.RequestType.SEGMENT) return;
      const kind = typeOfUrl(response.uri);
      if (kind) hooks.fragment(kind, response.uri);
    });
    player.addEventListener('error', (e) => {
      const d = e.detail || {};
      hooks.error('shaka', `${d.code || ''} ${d.message || (d.data ? JSON.stringify(d.data).slice(0, 300) : '')}`.trim(),
                  d.severity === shaka.util.Error.Severity.CRITICAL, '');
    });

    const audio = () => player.getAudioTracks() || [];
    const text = () => player.getTextTracks() || [];
    const labelOf = (t) => t.label || t.language || '';
    const adapter = {
      name: 'shaka',
      version: shaka.Player.version,
      audioTracks: () => audio().map((t, i) => ({index: i, lang: hooks.lang(t.language), name: labelOf(t)})),
      currentAudio() {
        const list = audio();
        const i = list.findIndex((t) => t.active);
        return i < 0 ? null : {index: i, lang: hooks.lang(list[i].language), name: labelOf(list[i])};
      },
      subtitleTracks: () => text().map((t, i) => ({index: i, lang: hooks.lang(t.language), name: labelOf(t)})),
      currentSubtitle() {
        const list = text();
        const i = list.findIndex((t) => t.active);
        return i < 0 ? null : {index: i, lang: hooks.lang(list[i].language), name: labelOf(list[i])};
      },
      pickAudio(wanted) {
        const t = audio().find((a) => hooks.lang(a.language) === hooks.lang(wanted));
        if (!t) return false;
        if (!t.active) player.selectAudioTrack(t);
        return true;
      },
      pickSubtitles(wanted) {
        if (!wanted || wanted === 'off') { player.selectTextTrack(null); return true; }
        const t = text().find((s) => hooks.lang(s.language) === hooks.lang(wanted));
        if (!t) return false;
        if (!t.active) player.selectTextTrack(t);
        const displayer = player.getTextDisplayer ? player.getTextDisplayer() : null;
        if (displayer && displayer.setTextVisibility) displayer.setTextVisibility(true);
        return true;
      },
      level() {
        const v = (player.getVariantTracks() || []).find((t) => t.active);
        if (!v) return null;
        return {index: v.id, width: v.width, height: v.height, bitrate: v.bandwidth, videoCodec: v.videoCodec,
                audioCodec: v.audioCodec, url: '', host: '', pathway: ''};
      },
      pathwayPriority: () => [],
    };
    player.attach(video)
      .then(() => player.load(url))
      .then(() => {
        if (cfg.audio) adapter.pickAudio(cfg.audio);
        if (cfg.subs) adapter.pickSubtitles(cfg.subs);
        hooks.ready();
        return video.play();
      })
      .catch((e) => hooks.error('shaka', `${e.code || ''} ${e.message || ''}`.trim(), true, ''));
    return adapter;
  }

  window.vodstackDash = {'dash.js': dashjsPlayer, shaka: shakaPlayer};
})();
