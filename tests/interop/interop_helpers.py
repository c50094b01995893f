"""Helpers of the interop tests: outside tools, a stack run on its own thread, playlists fetched
through an edge, and the bridge to a real browser (``browser/bridge.mjs``).

    need_tool(name, how)      a tool's path, or skip (locally) / fail (when $CI is set): tests.tools
    make_source(folder)       a 30 s 480x270 clip with eng + fra audio, and en/fr SRT subtitles
                              (`SAMPLE`, made by vodstack.sample, the maker `vodstack demo` uses)
    ingest(...)               ``vodstack ingest`` as a subprocess (H.264 only, 2 s segments, no VMAF)
    interop_topology(...)     two regions: lab-east (2 edges), lab-west (1 edge); quick timings
    StackThread               a ``vodstack.supervisor.Stack`` on its own event loop, driven synchronously
    playlists_of(...)         every playlist of a title, fetched through an edge with the /play token
    Browser                   chromium through playwright-core, one JSON line per command
"""
from __future__ import annotations

import asyncio
import contextlib
import collections
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin

import pytest

from tests.tools import IN_CI, need_tool
from vodstack.sample import SampleSpec, make_sample_source

REPO = Path(__file__).resolve().parents[2]
BROWSER_DIR = Path(__file__).resolve().parent / "browser"
ARTIFACTS = REPO / "artifacts" / "interop"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
TITLE = "interop"
TITLE_BYTERANGE = "interop-br"
SOURCE_S = 30
DEVICE = "laptop-chrome"
ADMIN_KEY = "interop-admin-key"
SUBTITLE_TEXT = {"en": "Hello from the English subtitles", "fr": "Bonjour des sous-titres français"}


def missing(reason: str) -> None:
    """Skip with ``reason`` locally; fail when CI is set (CI installs every tool), as tests.tools does."""
    if IN_CI:
        pytest.fail(f"{reason}; CI is set and .ci/run installs it", pytrace=False)
    pytest.skip(reason)


def need_node_package(package: str) -> Path:
    need_tool("node", "apt-get install nodejs npm")
    folder = REPO / "node_modules" / package
    if not (folder / "package.json").is_file():
        missing(f"node package {package} is not installed (run `npm ci` at the repository root)")
    return folder


def chromium_path() -> str:
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    missing("Debian's chromium is not installed (apt-get install chromium)")
    return ""


# -- a title -----------------------------------------------------------------------------------

#: the interop clip: small, two stereo tracks at 48 kHz (the AAC frame counts the tests check), and
#: one cue every 3 s per language
SAMPLE = SampleSpec(
    name="interop", video_name="interop.mp4", duration_s=SOURCE_S, width=480, height=270,
    sample_rate_hz=48000, crf=20, pix_fmt="yuv420p", nice=True,
    subtitles={lang: tuple((i * 3, i * 3 + 2, f"{text} #{i + 1}") for i in range(SOURCE_S // 3))
               for lang, text in SUBTITLE_TEXT.items()})


def make_source(folder: Path) -> tuple[Path, dict[str, Path]]:
    """The interop clip and its en/fr SRT files in ``folder`` (`vodstack.sample`)."""
    return make_sample_source(folder, SAMPLE)


def ingest(source: Path, subs: dict[str, Path], *, title: str, out: Path, layout: str) -> None:
    args = [sys.executable, "-m", "vodstack", "ingest", str(source), "--title", title, "--out", str(out),
            "--codecs", "h264", "--segment-duration", "2", "--chunk-duration", "10", "--no-vmaf",
            "--layout", layout, "--nice", "10"]
    for lang, path in subs.items():
        args += ["--subs", f"{lang}={path}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VODSTACK_FFMPEG", None)
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=str(REPO))
    assert done.returncode == 0, f"vodstack ingest failed:\n{done.stderr[-3000:]}"


# -- the stack ---------------------------------------------------------------------------------

def interop_topology(data_dir: Path, storage: Path) -> Any:
    from vodstack.topology import parse_topology

    hosts = {"edge-east-a": "127.0.0.2", "edge-east-b": "127.0.0.3", "edge-west-a": "127.0.0.4"}

    def edge(name: str, peers: list[str]) -> dict[str, Any]:
        # each edge its own loopback address, as each has its own host name in a deployment: Shaka
        # Player bans a failed service location by host name, so edges sharing 127.0.0.1 would be
        # banned together
        return {"name": name, "host": hosts[name], "port": 0, "ram_mb": 64, "disk_mb": 128, "peers": peers}

    data = {
        "stack": {"host": "127.0.0.1", "data_dir": str(data_dir), "storage": str(storage), "control_port": 0,
                  "heartbeat_interval_s": 0.5, "ready_timeout_s": 60.0},
        "keys": {"active": "k1", "secrets": {"k1": "interop-secret-k1"}},
        "steering": {"port": 0, "admin_key": ADMIN_KEY, "heartbeat_timeout_s": 2.0, "steering_ttl_s": 2,
                     "loop": "asyncio"},
        "regions": {
            "lab-east": {"preference": ["lab-west"], "origin": {"name": "origin-lab-east", "port": 0},
                         "edges": [edge("edge-east-a", ["edge-east-b"]), edge("edge-east-b", ["edge-east-a"])]},
            "lab-west": {"preference": ["lab-east"], "origin": {"name": "origin-lab-west", "port": 0},
                         "edges": [edge("edge-west-a", [])]},
        },
    }
    return parse_topology(data, env={})


class StackThread:
    """A running ``Stack`` on an event loop of its own thread; every method blocks until done."""

    def __init__(self, topology: Any) -> None:
        from vodstack.supervisor import Stack

        self.lines: collections.deque[str] = collections.deque(maxlen=400)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="interop-stack", daemon=True)
        self.thread.start()
        self.stack = Stack(topology, sink=lambda name, line: self.lines.append(f"{name:<16} | {line}"))

    def _run(self, coro: Any, timeout_s: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def start(self) -> StackThread:
        self._run(self.stack.start())
        return self

    def url_of(self, name: str) -> str:
        return self.stack.url_of(name)

    def kill(self, name: str) -> None:
        self._run(self.stack.kill(name))

    def restart(self, name: str) -> None:
        self._run(self.stack.restart(name))

    def edge_of_host(self, host: str) -> str:
        """The edge name behind ``127.0.0.1:PORT``."""
        for e in self.stack.topology.edges:
            if e.url.split("//", 1)[1] == host:
                return e.name
        raise KeyError(f"no edge at {host} (edges: {[e.url for e in self.stack.topology.edges]})")

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(list(self.lines)[-n:])

    def close(self) -> None:
        try:
            self._run(self.stack.stop(), timeout_s=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


# -- HTTP and playlists ------------------------------------------------------------------------

def http_get(url: str, *, headers: dict[str, str] | None = None, method: str = "GET",
             timeout_s: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def title_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The title's title.json, read through the edge that served ``doc``'s multivariant playlist:
    object paths come from it (relative to the title root; under ``v/{version}/`` since versioning)."""
    status, body = http_get(urljoin(doc["edge_multivariant_url"], "title.json"))
    assert status == 200, status
    return json.loads(body)


def play(stack: StackThread, title: str, *, region: str = "lab-east", session: str = "") -> dict[str, Any]:
    """``/play`` through the steering service; waits out a stack still settling (503)."""
    url = f"{stack.url_of('steering')}/play/{title}?device={DEVICE}&region={region}"
    if session:
        url += f"&session={session}"
    deadline = time.monotonic() + 20
    while True:
        status, body = http_get(url)
        if status == 200:
            return json.loads(body)
        assert status == 503 and time.monotonic() < deadline, f"/play answered {status}: {body[:300]!r}"
        time.sleep(0.3)


@dataclass(frozen=True)
class Playlist:
    kind: str
    """multivariant | steered | media | iframe | subtitle"""
    url: str
    text: str


def playlists_of(doc: dict[str, Any]) -> list[Playlist]:
    """Every playlist of the title of a ``/play`` answer: the steered multivariant (steering
    service), the stored one and each media playlist it names (through the first edge)."""
    import m3u8

    out = []
    status, body = http_get(doc["multivariant_url"])
    assert status == 200, body[:300]
    out.append(Playlist("steered", doc["multivariant_url"], body.decode()))
    master_url = doc["edge_multivariant_url"]
    status, body = http_get(master_url)
    assert status == 200, body[:300]
    master_text = body.decode()
    out.append(Playlist("multivariant", master_url, master_text))
    master = m3u8.loads(master_text)
    seen = set()
    wanted = [("media", p.uri) for p in master.playlists]
    wanted += [("iframe", p.uri) for p in master.iframe_playlists]
    wanted += [("subtitle" if m.type == "SUBTITLES" else "media", m.uri) for m in master.media if m.uri]
    for kind, uri in wanted:
        url = urljoin(master_url, uri)
        if url in seen:
            continue
        seen.add(url)
        status, body = http_get(url)
        assert status == 200, f"{url}: {status} {body[:200]!r}"
        out.append(Playlist(kind, url, body.decode()))
    return out


# -- node ---------------------------------------------------------------------------------------

def run_node(script: str, payload: Any, *, timeout_s: float = 120) -> Any:
    """Run ``browser/SCRIPT`` with ``payload`` as JSON on stdin; its stdout is one JSON document."""
    node = need_tool("node", "apt-get install nodejs npm")
    done = subprocess.run([node, str(BROWSER_DIR / script)], input=json.dumps(payload), capture_output=True,
                          text=True, timeout=timeout_s, cwd=str(REPO))
    assert done.returncode == 0, f"node {script} failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


class BrowserError(Exception):
    """The browser bridge answered an error (the message is the bridge's)."""


class Browser:
    """Debian's chromium driven by ``browser/bridge.mjs``: one JSON command per line on its stdin,
    one JSON answer per line on its stdout (``{"ok": true, "value": ...}`` or ``{"ok": false, "error"}``)."""

    def __init__(self, user_data_dir: Path, *, log_path: Path, script: str = "bridge.mjs") -> None:
        node = need_tool("node", "apt-get install nodejs npm")
        need_node_package("playwright-core")
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            [node, str(BROWSER_DIR / script)], cwd=str(REPO), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, bufsize=1,
            env={**os.environ, "CHROMIUM": chromium_path(), "USER_DATA_DIR": str(user_data_dir)})
        self.call("ready", timeout_s=90)

    def call(self, cmd: str, timeout_s: float = 60, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, "timeout_ms": int(timeout_s * 1000), **args}) + "\n")
        self.proc.stdin.flush()
        line = self._readline(timeout_s + 10)
        answer = json.loads(line)
        if not answer.get("ok"):
            raise BrowserError(f"{cmd}: {answer.get('error')}")
        return answer.get("value")

    def _readline(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout_s)
        if not result or not result[0]:
            raise BrowserError(f"the browser bridge said nothing within {timeout_s:.0f} s "
                               f"(exit code {self.proc.poll()}); see {self.log.name}")
        return result[0]

    def evaluate(self, expr: str) -> Any:
        return self.call("eval", expr=expr)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.call("quit", timeout_s=20)
        except (BrowserError, OSError, ValueError):
            pass
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@contextlib.contextmanager
def browser_session(profile: Path, artifacts: Path, tag: str = "") -> Iterator[Browser]:
    """Chromium through the bridge for one test module; its console goes to
    ``artifacts/console{tag}.log`` when it closes (the bridge's own log to ``bridge{tag}.log``)."""
    chromium_path()
    need_node_package("playwright-core")
    b = Browser(profile, log_path=artifacts / f"bridge{tag}.log")
    try:
        yield b
    finally:
        try:
            (artifacts / f"console{tag}.log").write_text("\n".join(b.call("console")) + "\n")
        except (BrowserError, OSError, ValueError):
            pass
        b.close()


def snapshot(browser: Browser) -> dict[str, Any]:
    """The watch page's state (``window.vodstack.snapshot()``)."""
    return browser.evaluate("window.vodstack.snapshot()")


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
    """Call ``predicate`` until it returns something truthy; AssertionError naming ``what`` after
    ``timeout_s`` (with the last value seen)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)
