// A real browser for the Python tests: Debian's chromium driven by playwright-core.
//
// Reads one JSON command per line on stdin, answers one JSON line per command on stdout:
//   {"cmd": "ready"}                                   -> the browser is up
//   {"cmd": "open", "url": U}                          -> the page loaded (DOMContentLoaded)
//   {"cmd": "eval", "expr": "window.vodstack.snapshot()"}  -> the value (JSON-able)
//   {"cmd": "fill", "selector": S, "value": V}
//   {"cmd": "click", "selector": S}
//   {"cmd": "select", "selector": S, "value": V}       -> choose an <option> of a <select>
//   {"cmd": "wait", "selector": S}                    -> an element matching S is visible
//   {"cmd": "screenshot", "path": P, "full_page": true}
//   {"cmd": "console"}                                -> the page's console lines and page errors so far
//   {"cmd": "cmcd_requests", "since": N}               -> {"next": M, "requests": [...]}: the page's requests
//        that carried CMCD (a CMCD query argument or CMCD-* headers) with seq >= N, each
//        {seq, method, url, type, query, headers}; the last MAX_CMCD_REQUESTS are kept
//   {"cmd": "quit"}
// Answers: {"ok": true, "value": ...} or {"ok": false, "error": "..."}. Logs go to stderr.
//
// Environment: CHROMIUM (executable; default /usr/lib/chromium/chromium), USER_DATA_DIR (a fresh
// folder; required). Never `playwright install`: the system's chromium is the browser.
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const executablePath = process.env.CHROMIUM || '/usr/lib/chromium/chromium';
const userDataDir = process.env.USER_DATA_DIR;
if (!userDataDir) {
  console.error('USER_DATA_DIR is required (a fresh folder)');
  process.exit(2);
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath, headless: true, args: FLAGS,
  viewport: {width: 1280, height: 800}, timeout: 60000,
});
const page = context.pages()[0] || await context.newPage();
const consoleLines = [];
page.on('console', (m) => { consoleLines.push(`${m.type()}: ${m.text()}`); if (consoleLines.length > 500) consoleLines.shift(); });
page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
const MAX_CMCD_REQUESTS = 5000;
const cmcdRequests = [];
let cmcdSeq = 0;
page.on('request', (r) => {
  const headers = Object.fromEntries(Object.entries(r.headers()).filter(([k]) => k.toLowerCase().startsWith('cmcd-')));
  let query = null;
  try { query = new URL(r.url()).searchParams.get('CMCD'); } catch (e) { query = null; }
  if (query === null && !Object.keys(headers).length) return;
  cmcdRequests.push({seq: cmcdSeq++, method: r.method(), url: r.url(), type: r.resourceType(), query, headers});
  if (cmcdRequests.length > MAX_CMCD_REQUESTS) cmcdRequests.shift();
});
page.on('requestfailed', (r) => consoleLines.push(`requestfailed: ${r.url()} ${r.failure() ? r.failure().errorText : ''}`));

function reply(doc) {
  process.stdout.write(JSON.stringify(doc) + '\n');
}

async function run(msg) {
  const timeout = msg.timeout_ms || 30000;
  switch (msg.cmd) {
    case 'ready':
      return {browser: context.browser() ? context.browser().version() : 'persistent', executablePath};
    case 'open':
      await page.goto(msg.url, {waitUntil: 'domcontentloaded', timeout});
      return page.url();
    case 'eval':
      return await page.evaluate(msg.expr);
    case 'fill':
      await page.fill(msg.selector, msg.value, {timeout});
      return null;
    case 'click':
      await page.click(msg.selector, {timeout});
      return null;
    case 'select':
      return await page.selectOption(msg.selector, msg.value, {timeout});
    case 'wait':
      await page.waitForSelector(msg.selector, {state: 'visible', timeout});
      return null;
    case 'screenshot':
      await page.screenshot({path: msg.path, fullPage: msg.full_page !== false, timeout});
      return msg.path;
    case 'console':
      return consoleLines.slice();
    case 'cmcd_requests':
      return {next: cmcdSeq, requests: cmcdRequests.filter((q) => q.seq >= (msg.since || 0))};
    case 'quit':
      return null;
    default:
      throw new Error(`unknown command ${msg.cmd}`);
  }
}

const lines = readline.createInterface({input: process.stdin});
for await (const line of lines) {
  if (!line.trim()) continue;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    reply({ok: false, error: `not JSON: ${e.message}`});
    continue;
  }
  try {
    const value = await run(msg);
    reply({ok: true, value: value === undefined ? null : value});
  } catch (e) {
    reply({ok: false, error: String(e && e.message ? e.message : e)});
  }
  if (msg.cmd === 'quit') break;
}
await context.close();
process.exit(0);
