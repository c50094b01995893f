// The status page: /_/status every 2 s into four tables; evacuate/restore with the admin key.
// The key is kept in this tab's sessionStorage only and sent as the X-Admin-Key header.
(function () {
  'use strict';

  const REFRESH_MS = 2000;
  const $ = (id) => document.getElementById(id);
  const keyInput = $('admin-key');
  keyInput.value = sessionStorage.getItem('vodstack-admin-key') || '';
  keyInput.addEventListener('change', () => sessionStorage.setItem('vodstack-admin-key', keyInput.value));
  $('admin').addEventListener('submit', (ev) => ev.preventDefault());

  function cell(content, cls) {
    const td = document.createElement('td');
    if (content instanceof Node) td.appendChild(content); else td.textContent = content === null || content === undefined ? '–' : String(content);
    if (cls) td.className = cls;
    return td;
  }
  function row(cells, cls) {
    const tr = document.createElement('tr');
    cells.forEach((c) => tr.appendChild(c));
    if (cls) tr.className = cls;
    return tr;
  }
  function fill(id, rows, empty) {
    const body = document.querySelector(`#${id} tbody`);
    if (!rows.length) {
      const td = cell(empty, 'empty');
      td.colSpan = document.querySelectorAll(`#${id} thead th`).length;
      body.replaceChildren(row([td]));
    } else {
      body.replaceChildren(...rows);
    }
  }
  const pct = (x) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(0)} %`);
  function rate(bytesPerS) {
    if (bytesPerS === null || bytesPerS === undefined) return '–';
    const bits = 8 * bytesPerS;
    if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gb/s`;
    if (bits >= 1e6) return `${(bits / 1e6).toFixed(1)} Mb/s`;
    if (bits >= 1e3) return `${(bits / 1e3).toFixed(0)} kb/s`;
    return `${bits.toFixed(0)} b/s`;
  }
  const bps = (x) => (x ? rate(x / 8) : '–');
  const secs = (x) => (x === null || x === undefined ? '–' : x < 120 ? `${x.toFixed(0)} s` : `${(x / 60).toFixed(0)} min`);
  function badge(text, kind) {
    const span = document.createElement('span');
    span.className = `badge ${kind}`;
    span.textContent = text;
    return span;
  }

  async function regionAction(region, action) {
    const out = $('admin-result');
    const key = keyInput.value;
    if (!key) {
      out.textContent = 'Type the admin key first.';
      out.className = 'result bad';
      keyInput.focus();
      return;
    }
    sessionStorage.setItem('vodstack-admin-key', key);
    try {
      const resp = await fetch(`/regions/${encodeURIComponent(region)}/${action}`, {method: 'POST', headers: {'X-Admin-Key': key}});
      const doc = await resp.json();
      if (!resp.ok) throw new Error(doc.error || `HTTP ${resp.status}`);
      out.textContent = `${region}: ${action === 'evacuate' ? 'evacuated' : 'restored'}${doc.changed ? '' : ' (it already was)'}.`;
      out.className = 'result ok';
    } catch (e) {
      out.textContent = `${region}: ${action} refused: ${e.message}`;
      out.className = 'result bad';
    }
    refresh();
  }
  function actionButton(region, evacuated) {
    const b = document.createElement('button');
    const action = evacuated ? 'restore' : 'evacuate';
    b.type = 'button';
    b.textContent = evacuated ? 'Restore' : 'Evacuate';
    b.className = action;
    b.dataset.region = region;
    b.dataset.action = action;
    b.addEventListener('click', () => regionAction(region, action));
    return b;
  }

  function render(doc) {
    fill('regions', doc.regions.map((r) => row([
      cell(r.name, 'name'),
      cell(r.evacuated ? badge('evacuated', 'bad') : badge('serving', 'ok')),
      cell(`${r.edges_in_rotation} / ${r.edges}`, r.edges_in_rotation < r.edges ? 'warn' : ''),
      cell(r.sessions), cell(r.preference.join(', ') || '–'), cell(r.origins.join(' ')),
      cell(doc.admin_enabled ? actionButton(r.name, r.evacuated) : 'admin disabled'),
    ], r.evacuated ? 'out' : '')), 'no regions');

    fill('edges', doc.edges.map((e) => {
      const health = e.status === 'ok' ? badge('ok', 'ok') : e.draining ? badge('draining', 'warn')
        : badge(e.status, 'bad');
      const heard = e.status !== 'silent';  // a silent edge's last figures are stale: not shown
      return row([
        cell(e.name, 'name'), cell(e.region),
        cell(e.in_rotation ? badge('in rotation', 'ok') : badge(`out: ${e.reason}`, 'bad')),
        cell(health), cell(heard ? pct(e.load_fraction) : '–'), cell(heard ? rate(e.bytes_out_per_s) : '–'),
        cell(pct(e.hit_ratio)), cell(pct(e.byte_hit_ratio)), cell(heard ? e.active_connections : '–'), cell(e.sessions),
        cell(e.last_heartbeat_age_s === null ? 'never' : `${e.last_heartbeat_age_s.toFixed(1)} s ago`),
      ], e.in_rotation ? '' : 'out');
    }), 'no edges');

    fill('titles', doc.titles.map((t) => {
      const link = document.createElement('a');
      link.href = `/watch/${encodeURIComponent(t.title)}`;
      link.textContent = 'watch';
      return row([
        cell(t.title, 'name'), cell(secs(t.duration_s)),
        cell(t.video ? `${t.video.length} rungs (${(t.codecs || []).join(', ')})` : t.problem),
        cell((t.audio || []).join(', ')), cell((t.subtitles || []).join(', ')), cell(t.sessions), cell(link),
      ]);
    }), 'none yet (open /watch/TITLE or ask /play/TITLE)');

    $('sessions-count').textContent = `(${doc.sessions_live})`;
    $('sessions-note').textContent = `Sessions heard from in the last ${doc.live_window_s} s (players that do content steering ask every ${doc.steering_ttl_s} s).`;
    fill('sessions', doc.sessions.map((s) => row([
      cell(s.session.slice(0, 12), 'mono'), cell(s.title), cell(s.region), cell(s.device || '–'), cell(s.edge || '–'),
      cell(bps(s.throughput_bps)), cell(secs(s.age_s)), cell(`${s.last_seen_age_s.toFixed(0)} s ago`),
    ])), 'no live sessions');
  }

  let failing = false;
  async function refresh() {
    try {
      const resp = await fetch('/_/status', {cache: 'no-store'});
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const doc = await resp.json();
      render(doc);
      window.vodstackStatus = doc;
      $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
      $('updated').className = '';
      failing = false;
    } catch (e) {
      $('updated').textContent = `cannot reach the steering service (${e.message}); retrying`;
      $('updated').className = 'bad';
      failing = true;
    }
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
