// The watch page: ask the playback API for a session, play its steered multivariant playlist.
//
// Which player: the browser's own when it plays HLS *and* lets a page pick tracks
// (video.audioTracks, as Safari does), or when hls.js cannot run here; hls.js otherwise.
// Chromium answers "maybe" to canPlayType('application/vnd.apple.mpegurl') but its native player
// has no audio track list and no content steering, so it gets hls.js. `?player=native|hls.js`
// forces one.
//
// hls.js does content steering (EXT-X-CONTENT-STEERING in the playlist, /steer every TTL): when
// the serving edge dies or leaves rotation, the next pathway serves.
//
// DASH (?format=dash, or a device whose first format is DASH): the steered MPD through dash.js
// (default) or Shaka Player (?player=shaka), both from watch_dash.js, with DASH content steering.
//
// CMCD (?cmcd=query|header, off by default): the player's own CMCD (CTA-5004) is turned on, in the
// CMCD query argument or in CMCD-* headers, with sid = ?sid= or the /play session and cid = the title.
//
// State for people is in the side panel; state for tests is window.vodstack.snapshot().
(function () {
  'use strict';

  const cfg = JSON.parse(document.getElementById('vodstack-config').textContent);
  const video = document.getElementById('video');
  const $ = (id) => document.getElementById(id);
  const MAX_ERRORS = 50;

  const st = {
    ready: false,          // the playlist is loaded and tracks are known
    mode: null,            // 'hls.js' | 'native' | 'dash.js' | 'shaka'
    play: null,            // the /play answer
    errors: [],            // {at_s, type, details, fatal, url}
    fatal: null,
    frags: {main: null, audio: null, subtitle: null},   // URL of the last fragment loaded, by type
    mainHosts: [],         // host:port of every edge that served video fragments, in order
    pathwaySwitches: [],   // {at_s, from, to}
    fragsLoaded: 0,
  };
  let hls = null;
  let dash = null;         // the DASH player's adapter (watch_dash.js)

  // -- small helpers ---------------------------------------------------------------------------

  const LANG3 = {eng: 'en', fra: 'fr', fre: 'fr', deu: 'de', ger: 'de', spa: 'es', ita: 'it', por: 'pt',
                 nld: 'nl', dut: 'nl', jpn: 'ja', zho: 'zh', chi: 'zh', kor: 'ko', rus: 'ru'};
  function lang(code) {
    const primary = String(code || '').toLowerCase().split(/[-_]/)[0];
    return LANG3[primary] || primary;
  }
  function hostOf(url) {
    if (!url) return '';
    try { return new URL(url, location.href).host; } catch (e) { return ''; }
  }
  function edgeOfHost(host) {
    const pathways = (st.play && st.play.pathways) || [];
    const p = pathways.find((q) => hostOf(q.url) === host);
    return p ? p.id : '';
  }
  function now() { return Math.round(performance.now()) / 1000; }
  function note(type, details, fatal, url) {
    st.errors.push({at_s: now(), type: String(type), details: String(details), fatal: !!fatal, url: url || ''});
    if (st.errors.length > MAX_ERRORS) st.errors.shift();
    if (fatal) st.fatal = type + ': ' + details;
    renderErrors();
  }
  function say(text) {
    const m = $('message');
    m.textContent = text;
    m.hidden = !text;
  }

  // -- tracks ----------------------------------------------------------------------------------

  function audioTracks() {
    if (dash) return dash.audioTracks();
    if (hls) return hls.audioTracks.map((t, i) => ({index: i, lang: lang(t.lang), name: t.name || t.lang}));
    const list = video.audioTracks ? Array.from(video.audioTracks) : [];
    return list.map((t, i) => ({index: i, lang: lang(t.language), name: t.label || t.language}));
  }
  function currentAudio() {
    if (dash) return dash.currentAudio();
    if (hls) {
      const t = hls.audioTracks[hls.audioTrack];
      return t ? {index: hls.audioTrack, lang: lang(t.lang), name: t.name, group: t.groupId, url: t.url} : null;
    }
    const list = video.audioTracks ? Array.from(video.audioTracks) : [];
    const i = list.findIndex((t) => t.enabled);
    return i < 0 ? null : {index: i, lang: lang(list[i].language), name: list[i].label};
  }
  function subtitleTracks() {
    if (dash) return dash.subtitleTracks();
    if (hls) return hls.subtitleTracks.map((t, i) => ({index: i, lang: lang(t.lang), name: t.name || t.lang}));
    return Array.from(video.textTracks).filter((t) => t.kind === 'subtitles' || t.kind === 'captions')
      .map((t, i) => ({index: i, lang: lang(t.language), name: t.label || t.language}));
  }
  function showingTextTrack() {
    return Array.from(video.textTracks).find((t) => t.mode === 'showing') || null;
  }
  function currentSubtitles() {
    const showing = showingTextTrack();
    const cues = showing && showing.cues ? Array.from(showing.cues) : [];
    const active = showing && showing.activeCues ? Array.from(showing.activeCues) : [];
    let chosen = null;
    if (dash) {
      chosen = dash.currentSubtitle();
    } else if (hls) {
      const t = hls.subtitleTracks[hls.subtitleTrack];
      chosen = t ? {index: hls.subtitleTrack, lang: lang(t.lang), name: t.name} : null;
    } else if (showing) {
      chosen = {index: -1, lang: lang(showing.language), name: showing.label};
    }
    if (!chosen) return null;
    return Object.assign(chosen, {
      showing: !!showing, showingLang: showing ? lang(showing.language) : '',
      cues: cues.length, cueTexts: cues.slice(0, 5).map((c) => c.text),
      activeCueTexts: active.map((c) => c.text),
    });
  }

  function pickAudio(wanted) {
    if (dash) return dash.pickAudio(wanted);
    const t = audioTracks().find((a) => a.lang === lang(wanted));
    if (!t) return false;
    if (hls) {
      if (hls.audioTrack !== t.index) hls.audioTrack = t.index;
    } else if (video.audioTracks) {
      Array.from(video.audioTracks).forEach((a, i) => { a.enabled = i === t.index; });
    }
    return true;
  }
  function pickSubtitles(wanted) {
    const off = !wanted || wanted === 'off';
    if (dash) return dash.pickSubtitles(wanted);
    if (hls) {
      if (off) { hls.subtitleTrack = -1; return true; }
      const t = subtitleTracks().find((s) => s.lang === lang(wanted));
      if (!t) return false;
      hls.subtitleDisplay = true;
      if (hls.subtitleTrack !== t.index) hls.subtitleTrack = t.index;
      return true;
    }
    let found = false;
    Array.from(video.textTracks).forEach((t) => {
      const match = !off && lang(t.language) === lang(wanted) && !found;
      t.mode = match ? 'showing' : 'disabled';
      found = found || match;
    });
    return off || found;
  }

  // Keep the chosen language (URL or menu) across track list updates; say once if it is missing.
  const missingSaid = {};
  function keepChoice(kind) {
    const wanted = kind === 'audio' ? cfg.audio : cfg.subs;
    if (!wanted) return;
    const list = kind === 'audio' ? audioTracks() : subtitleTracks();
    if (!list.length) return;
    const ok = kind === 'audio' ? pickAudio(wanted) : pickSubtitles(wanted);
    if (!ok && !missingSaid[kind + wanted]) {
      missingSaid[kind + wanted] = true;
      note('tracks', `this title has no ${wanted} ${kind === 'audio' ? 'audio' : 'subtitles'}`, false);
    }
  }

  function fillTrackMenus() {
    const audio = $('audio');
    const subs = $('subs');
    const a = audioTracks();
    const cur = currentAudio();
    audio.replaceChildren(...a.map((t) => new Option(`${t.name} (${t.lang})`, t.lang, false,
                                                      !!cur && cur.lang === t.lang)));
    audio.disabled = a.length < 2;
    const s = subtitleTracks();
    const curS = currentSubtitles();
    subs.replaceChildren(new Option('Off', 'off', false, !curS),
      ...s.map((t) => new Option(`${t.name} (${t.lang})`, t.lang, false, !!curS && curS.lang === t.lang)));
    subs.disabled = s.length === 0;
  }

  // -- the side panel --------------------------------------------------------------------------

  function currentLevel() {
    if (dash) return dash.level();
    if (!hls) return null;
    const i = hls.currentLevel >= 0 ? hls.currentLevel : hls.loadLevel;
    const l = hls.levels[i];
    if (!l) return null;
    return {index: i, width: l.width, height: l.height, bitrate: l.bitrate, videoCodec: l.videoCodec,
            audioCodec: l.audioCodec, url: l.url, host: hostOf(l.url), pathway: l.pathwayId || ''};
  }
  function bufferAhead() {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime + 0.1 && video.currentTime <= b.end(i)) return b.end(i) - video.currentTime;
    }
    return 0;
  }
  function quality() {
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    return {
      totalVideoFrames: q ? q.totalVideoFrames : null,
      droppedVideoFrames: q ? q.droppedVideoFrames : null,
      decodedFrames: typeof video.webkitDecodedFrameCount === 'number' ? video.webkitDecodedFrameCount
        : (q ? q.totalVideoFrames : null),
    };
  }

  function snapshot() {
    const mainUrl = st.frags.main || '';
    const host = hostOf(mainUrl);
    return Object.assign({
      ready: st.ready, mode: st.mode, title: cfg.title, device: cfg.device, region: cfg.region,
      session: st.play ? st.play.session : '',
      currentTime: video.currentTime, paused: video.paused, ended: video.ended,
      readyState: video.readyState, networkState: video.networkState,
      bufferAhead_s: bufferAhead(), videoWidth: video.videoWidth, videoHeight: video.videoHeight,
      mediaError: video.error ? {code: video.error.code, message: video.error.message} : null,
      errors: st.errors.slice(), fatal: st.fatal,
      audio: currentAudio(), audioTracks: audioTracks(),
      subtitles: currentSubtitles(), subtitleTracks: subtitleTracks(),
      level: currentLevel(),
      fragHost: host, fragEdge: edgeOfHost(host), fragUrl: mainUrl,
      audioFragUrl: st.frags.audio || '', subtitleFragUrl: st.frags.subtitle || '',
      mainHosts: st.mainHosts.slice(), fragsLoaded: st.fragsLoaded,
      pathways: hls && hls.pathways ? hls.pathways.slice() : [],
      pathwayPriority: dash ? dash.pathwayPriority() : (hls && hls.pathwayPriority ? hls.pathwayPriority.slice() : []),
      format: cfg.format, playerVersion: dash ? dash.version : (window.Hls ? Hls.version : ''),
      pathwaySwitches: st.pathwaySwitches.slice(),
      cmcd: cfg.cmcd ? {mode: cfg.cmcd, sid: cfg.cmcd_sid, cid: cfg.title} : null,
      edges: st.play ? st.play.pathways.map((p) => ({id: p.id, host: hostOf(p.url)})) : [],
    }, quality());
  }

  function renderFacts() {
    const s = snapshot();
    $('f-mode').textContent = !s.mode ? '…' : (s.mode === 'native' ? 'the browser\'s own' : `${s.mode} ${s.playerVersion}`)
      + ` (${(cfg.format || 'hls').toUpperCase()})`;
    $('f-session').textContent = s.session || '…';
    $('f-edge').textContent = s.fragHost ? `${s.fragEdge || '?'} (${s.fragHost})` : (s.mode === 'native' ? 'not visible to the page' : '…');
    $('f-pathways').textContent = s.pathwayPriority.length ? s.pathwayPriority.join(' › ')
      : (st.play ? st.play.pathways.map((p) => p.id).join(' › ') : '…');
    $('f-level').textContent = s.level ? `${s.level.width}x${s.level.height} ${s.level.videoCodec} ${Math.round(s.level.bitrate / 1000)} kb/s`
      : (s.videoWidth ? `${s.videoWidth}x${s.videoHeight}` : '…');
    $('f-audio').textContent = s.audio ? `${s.audio.name} (${s.audio.lang})` : '…';
    $('f-subs').textContent = s.subtitles ? `${s.subtitles.name} (${s.subtitles.lang})` : 'off';
    $('f-time').textContent = `${s.currentTime.toFixed(1)} s${s.paused ? ' (paused)' : ''}${s.ended ? ' (ended)' : ''}`;
    $('f-frames').textContent = s.decodedFrames === null ? '…' : `${s.decodedFrames} decoded, ${s.droppedVideoFrames || 0} dropped`;
    $('f-buffer').textContent = `${s.bufferAhead_s.toFixed(1)} s`;
  }
  function renderErrors() {
    const list = $('errors');
    if (!st.errors.length) return;
    list.replaceChildren(...st.errors.slice(-10).map((e) => {
      const li = document.createElement('li');
      li.className = e.fatal ? 'fatal' : '';
      li.textContent = `${e.at_s.toFixed(1)} s ${e.type}: ${e.details}${e.url ? ' — ' + hostOf(e.url) : ''}`;
      return li;
    }));
  }

  // -- players ---------------------------------------------------------------------------------

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.appendChild(s);
    });
  }

  function chooseMode() {
    const native = !!video.canPlayType('application/vnd.apple.mpegurl');
    const mse = !!(window.MediaSource || window.ManagedMediaSource);
    if (cfg.player === 'native') return 'native';
    if (cfg.player === 'hls.js') return 'hls.js';
    if (native && ('audioTracks' in video || !mse || !cfg.hlsjs_url)) return 'native';
    return 'hls.js';
  }

  function playNative(url) {
    st.mode = 'native';
    video.src = url;
    video.addEventListener('loadedmetadata', () => {
      if (cfg.audio) pickAudio(cfg.audio);
      pickSubtitles(cfg.subs);
      st.ready = true;
      fillTrackMenus();
    }, {once: true});
    video.play().catch((e) => note('play', e.message, false));
  }

  function playWithHlsJs(url) {
    st.mode = 'hls.js';
    if (!window.Hls.isSupported()) throw new Error('this browser has neither HLS playback nor Media Source Extensions');
    const retry = {maxNumRetry: 2, retryDelayMs: 250, maxRetryDelayMs: 1000};
    const options = {
      // an edge that stops answering is left quickly: the next pathway has the same bytes
      fragLoadPolicy: {default: {maxTimeToFirstByteMs: 4000, maxLoadTimeMs: 20000,
                                 timeoutRetry: retry, errorRetry: retry}},
      playlistLoadPolicy: {default: {maxTimeToFirstByteMs: 4000, maxLoadTimeMs: 10000,
                                     timeoutRetry: retry, errorRetry: retry}},
      renderTextTracksNatively: true,
    };
    if (cfg.audio) options.audioPreference = {lang: cfg.audio};
    if (cfg.subs && cfg.subs !== 'off') options.subtitlePreference = {lang: cfg.subs};
    if (cfg.cmcd) {
      options.cmcd = {sessionId: cfg.cmcd_sid, contentId: cfg.title, useHeaders: cfg.cmcd === 'header'};
    }
    if (cfg.buffer_s) {
      options.maxBufferLength = cfg.buffer_s;
      options.maxMaxBufferLength = cfg.buffer_s;
      options.backBufferLength = 30;
    }
    hls = new Hls(options);
    const E = Hls.Events;
    hls.on(E.MANIFEST_PARSED, () => {
      st.ready = true;
      fillTrackMenus();
      video.play().catch((e) => note('play', e.message, false));
    });
    // the track lists follow the level (and its pathway's groups): choose again whenever they change
    hls.on(E.AUDIO_TRACKS_UPDATED, () => { keepChoice('audio'); fillTrackMenus(); });
    hls.on(E.AUDIO_TRACK_SWITCHED, fillTrackMenus);
    hls.on(E.SUBTITLE_TRACKS_UPDATED, () => { keepChoice('subs'); fillTrackMenus(); });
    hls.on(E.SUBTITLE_TRACK_SWITCH, fillTrackMenus);
    hls.on(E.FRAG_LOADED, (_, data) => {
      const f = data.frag;
      st.fragsLoaded += 1;
      st.frags[f.type] = f.url;
      if (f.type === 'main') {
        const h = hostOf(f.url);
        if (st.mainHosts[st.mainHosts.length - 1] !== h) st.mainHosts.push(h);
      }
    });
    let lastPathway = '';
    hls.on(E.LEVEL_SWITCHED, () => {
      const l = currentLevel();
      if (l && l.pathway && l.pathway !== lastPathway) {
        if (lastPathway) st.pathwaySwitches.push({at_s: now(), from: lastPathway, to: l.pathway});
        lastPathway = l.pathway;
      }
    });
    hls.on(E.ERROR, (_, data) => {
      const url = (data.frag && data.frag.url) || (data.context && data.context.url) || data.url || '';
      note(data.type, data.details + (data.response && data.response.code ? ` (HTTP ${data.response.code})` : ''),
           data.fatal, url);
      if (data.fatal && data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      }
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  function noteFragment(type, url) {
    st.fragsLoaded += 1;
    st.frags[type] = url;
    if (type === 'main') {
      const h = hostOf(url);
      if (st.mainHosts[st.mainHosts.length - 1] !== h) st.mainHosts.push(h);
    }
  }

  async function playDash(url) {
    const which = cfg.player === 'shaka' ? 'shaka' : 'dash.js';
    st.mode = which;
    const src = which === 'shaka' ? cfg.shaka_url : cfg.dashjs_url;
    if (which === 'shaka' ? !window.shaka : !window.dashjs) await loadScript(src);
    if (!window.vodstackDash) await loadScript('/static/watch_dash.js');
    dash = window.vodstackDash[which](url, video, cfg, {
      lang,
      fragment: noteFragment,
      error: (type, details, fatal, u) => note(type, details, fatal, u),
      ready: () => {
        st.ready = true;
        keepChoice('audio');
        keepChoice('subs');
        fillTrackMenus();
        video.play().catch((e) => note('play', e.message, false));
      },
    });
    // track lists can change as the player learns them: keep the URL's choice
    video.addEventListener('loadeddata', () => { keepChoice('audio'); keepChoice('subs'); fillTrackMenus(); });
  }

  // -- start -----------------------------------------------------------------------------------

  async function start() {
    const q = new URLSearchParams({device: cfg.device, region: cfg.region, format: cfg.format || 'hls'});
    if (cfg.session) q.set('session', cfg.session);
    let answer;
    try {
      const resp = await fetch(`/play/${encodeURIComponent(cfg.title)}?${q}`);
      answer = await resp.json();
      if (!resp.ok) throw new Error(`${resp.status}: ${answer.error || 'refused'}`);
    } catch (e) {
      note('playback-api', e.message, true);
      say(`The playback API refused: ${e.message}`);
      return;
    }
    st.play = answer;
    if (cfg.cmcd && !cfg.cmcd_sid) cfg.cmcd_sid = String(answer.session || '');
    try {
      if (answer.format === 'dash') {
        await playDash(answer.manifest_url);
        return;
      }
      const mode = chooseMode();
      if (mode === 'native') {
        playNative(answer.multivariant_url);
      } else {
        if (!cfg.hlsjs_url) throw new Error('this browser does not play HLS by itself and hls.js is not installed ' +
                                            'on the server (run npm ci at the repository root)');
        if (!window.Hls) await loadScript(cfg.hlsjs_url);
        playWithHlsJs(answer.multivariant_url);
      }
    } catch (e) {
      const message = e && e.message ? e.message : String(e);  // dash.js throws strings
      note('player', message, true);
      say(message);
    }
  }

  video.addEventListener('error', () => {
    if (video.error) note('media', `${video.error.code} ${video.error.message || ''}`, st.mode === 'native');
  });
  $('audio').addEventListener('change', (ev) => { cfg.audio = ev.target.value; pickAudio(cfg.audio); });
  $('subs').addEventListener('change', (ev) => { cfg.subs = ev.target.value; pickSubtitles(cfg.subs); });
  $('unmute').addEventListener('click', () => { video.muted = !video.muted; $('unmute').textContent = video.muted ? 'Unmute' : 'Mute'; });
  const deviceSel = $('device');
  const regionSel = $('region');
  deviceSel.replaceChildren(...cfg.devices.map((d) => new Option(d, d, false, d === cfg.device)));
  regionSel.replaceChildren(...cfg.regions.map((r) => new Option(r, r, false, r === cfg.region)));
  $('where').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams(location.search);
    q.set('device', deviceSel.value);
    q.set('region', regionSel.value);
    q.delete('session');
    location.search = q.toString();
  });

  window.vodstack = {config: cfg, state: st, snapshot, get hls() { return hls; }, video};
  setInterval(renderFacts, 500);
  start();
})();
