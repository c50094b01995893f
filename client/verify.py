"""Verify what arrives: decode the media a session downloads and report what is broken.

A `MediaVerifier` belongs to one session (``SessionConfig.verify_every`` > 0 makes one, as
``SessionContext.verifier``). The session asks `MediaVerifier.wants` before a media request (so
the body is kept only when it will be checked: sessions that do not verify copy nothing), hands
over every init section it fetches (`add_init`) and each wanted segment once it is complete
(`add_segment`; an abandoned download is not handed over), and `drain`\\ s it at the end. Checked:

* every init section, when the first segment that needs it is checked (or at `drain`): it opens
  and names an audio or video stream with a decoder;
* the first frames (``video_frames`` video, ``audio_frames`` audio) of every ``every``-th media
  segment (index % every == 0, per playlist), fMP4 as init + segment bytes, MPEG-TS alone, byte
  ranges as the ranged bytes, AES-128 segments decrypted first (AES-128-CBC, PKCS7, the IV of
  the ``#EXT-X-KEY`` or the media sequence number, RFC 8216 5.2) when the session holds the key;
  all of a segment's packets are read (cheap) for their timestamps and the demuxer's corruption
  flags. A media error is: the container unreadable, a decode error, no frames, packets the
  demuxer flags corrupt, no packets of a stream, an init that does not open;
* timestamps: `verify_timeline.TimelineCheck` (gaps, overlaps, position against the playlist,
  A/V sync; tolerance one frame + 1 ms).

Decoders run with ``err_detect=explode`` (H.264 would otherwise conceal damaged pictures and
say nothing), single-threaded. An error before a stream's first picture comes out, on a packet
that is not a keyframe, is the decoder starting mid-GOP (an open GOP's references are in the
previous segment) and is not reported. Known misses: damage in frames past the first few that the
demuxer does not flag (fMP4 has no continuity counters), SAMPLE-AES and encrypted init sections
(skipped, counted), PTS wrap-around (26.5 h).

Decoding is CPU work and runs in an executor thread (the loop's default one unless given), one
segment at a time per session, in download order: a session's timing never waits on it. At most
``max_pending`` segments wait; when more are wanted the verifier says no (counted as skipped,
``behind``), so memory stays bounded and no body is kept after its check. PyAV (``av``) is
imported in the worker thread, only by sessions that verify.

Results: `errors` (`MediaError`: URL, track, segment index, one line of what), `summary`
(`VerifySummary`: segments and inits checked, frames decoded, errors, skipped by reason, CPU
seconds) and `result()`: both, compact, for a load worker to send.
"""
from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any, Hashable, Mapping
from urllib.parse import urljoin

from .verify_timeline import SegmentTimes, StreamTimes, TimelineCheck

__all__ = ["MediaError", "VerifySummary", "MediaVerifier", "SegmentProbe", "StreamProbe", "probe_media",
           "probe_init", "decrypt_aes128", "init_id", "track_label"]

log = logging.getLogger(__name__)

_KINDS = ("video", "audio")


@dataclass(frozen=True, slots=True)
class MediaError:
    """One broken thing a session downloaded."""

    url: str
    track: str
    """``video 640x360``, ``audio audio_2 (en)``."""
    segment: int | None
    """Its index in its playlist (0-based); None for an init section."""
    what: str
    """One line: ``video seg 3 of 640x360: decode failed: Invalid data found when processing input``."""

    def line(self) -> str:
        return f"{self.url}: {self.what}"


@dataclass(slots=True)
class VerifySummary:
    """What a session's verification did."""

    segments_checked: int = 0
    inits_checked: int = 0
    video_frames: int = 0
    audio_frames: int = 0
    errors: int = 0
    """Media errors found (all of them; `MediaVerifier.errors` keeps the first ``max_errors``)."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Wanted segments not checked, by reason: ``behind`` (``max_pending`` waiting), ``no key``,
    ``SAMPLE-AES`` (samples encrypted inside), ``no init`` (its init section was not handed over),
    ``init broken`` (reported once, for the init), ``unfinished`` (still waiting when `drain` gave up)."""
    cpu_s: float = 0.0
    """CPU seconds spent decrypting and decoding (the worker thread's own)."""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu_s"] = round(self.cpu_s, 4)
        return d

    def line(self) -> str:
        skipped = sum(self.skipped.values())
        why = f" ({', '.join(f'{k} {v}' for k, v in sorted(self.skipped.items()))})" if skipped else ""
        return (f"verified {self.segments_checked} segments and {self.inits_checked} inits: {self.video_frames} video "
                f"+ {self.audio_frames} audio frames decoded, {self.errors} media error"
                f"{'' if self.errors == 1 else 's'}, {skipped} skipped{why}, CPU {self.cpu_s:.2f} s")


def track_label(track: Any) -> str:
    """A track in messages: ``640x360`` for a video variant (its bitrate when it says no size), ``name
    (language)`` for a rendition."""
    if getattr(track, "bandwidth_bps", None) is not None:
        return f"{track.width}x{track.height}" if track.height else f"{track.bandwidth_bps // 1000} kbps"
    name = getattr(track, "name", "") or "?"
    language = getattr(track, "language", None)
    return f"{name} ({language})" if language and language != name else name


def init_id(track_key: str, seg: Any) -> tuple[str, str] | None:
    """The identity of ``seg``'s init section for track ``track_key``, as the session keys the init
    sections it fetched (`SessionContext.init_task`); None when it has none."""
    if seg.init is None:
        return None
    return (track_key, f"{seg.init.uri}#{seg.init.byterange}")


@dataclass(frozen=True, slots=True)
class StreamProbe:
    """One audio or video stream of a decoded segment."""

    kind: str
    times: StreamTimes
    packets: int
    frames: int
    error: str | None
    """Decode failed / no frames / corrupt packets, one line; None when it decoded."""


@dataclass(frozen=True, slots=True)
class SegmentProbe:
    """What decoding one segment (or init section) found."""

    streams: tuple[StreamProbe, ...] = ()
    error: str | None = None
    """The container as a whole: unreadable, no audio or video stream, decryption failed."""


@dataclass(slots=True)
class _Job:
    url: str
    source: str
    label: str
    index: int
    start_s: float
    duration_s: float
    body: bytes
    init: Hashable | None  # the `init_id` of the init section it needs
    key: tuple[bytes, bytes] | None  # AES-128 (key, iv)


@dataclass(slots=True)
class _Init:
    url: str
    body: bytes
    checked: bool = False
    broken: bool = False


class MediaVerifier:
    """Checks one session's media off the event loop (see the module docstring)."""

    def __init__(self, every: int = 1, *, video_frames: int = 3, audio_frames: int = 8, max_pending: int = 16,
                 max_errors: int = 100, max_inits: int = 32, executor: Executor | None = None) -> None:
        if every < 1:
            raise ValueError("verify every N segments needs N >= 1")
        self.every = every
        self.video_frames = video_frames
        self.audio_frames = audio_frames
        self.max_pending = max_pending
        self.max_errors = max_errors
        self.max_inits = max_inits
        self.executor = executor
        self.errors: list[MediaError] = []
        self.summary = VerifySummary()
        self.timeline = TimelineCheck()
        self._inits: OrderedDict[Hashable, _Init] = OrderedDict()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    # --- what the session calls -----------------------------------------------------------------

    def wants(self, source: str, index: int) -> bool:
        """Keep the body of segment ``index`` of a ``source`` (``video``/``audio``) playlist?"""
        if source not in _KINDS or index % self.every:
            return False
        if self._queue.qsize() >= self.max_pending:
            self._skip("behind")
            return False
        return True

    def add_init(self, ident: Hashable, url: str, body: bytes) -> None:
        """An init section the session fetched (``ident``: `init_id`); checked with its first segment."""
        self._inits[ident] = _Init(url, body)
        self._inits.move_to_end(ident)
        while len(self._inits) > self.max_inits:
            _, old = self._inits.popitem(last=False)
            if not old.checked:
                self._skip("init evicted")

    def add_segment(self, source: str, index: int, *, seg: Any, base: str, url: str, body: bytes | None,
                    track_key: str, track: Any, keys: Mapping[str, bytes]) -> None:
        """Segment ``index`` of a ``source`` playlist, complete: ``seg`` (its `playlists.Segment`,
        URIs relative to ``base``) fetched from ``url``; ``track_key`` as the session keys its init
        sections (`init_id`); ``track`` the `Variant` or `Rendition` it belongs to (for messages);
        ``keys`` the session's keys by resolved URL."""
        if body is None:
            return
        label = track_label(track)
        init = init_id(track_key, seg)
        key = None
        seg_key = getattr(seg, "key", None)
        if seg_key is not None:
            if seg_key.method != "AES-128":
                self._skip(seg_key.method)
                return
            secret = keys.get(urljoin(base, seg_key.uri))
            if secret is None:
                self._skip("no key")
                return
            key = (secret, seg_key.iv_for(seg.sequence))
        self._queue.put_nowait(_Job(url=url, source=source, label=label, index=index, start_s=seg.start_s,
                                    duration_s=seg.duration_s, body=body, key=key,
                                    init=init))
        if self._worker is None:
            self._worker = asyncio.create_task(self._work())

    async def drain(self, timeout_s: float = 60.0) -> None:
        """Wait (real seconds, at most ``timeout_s``) for the checks still waiting, then check the
        init sections no segment used; what is left is counted as skipped (``unfinished``)."""
        try:
            if self._worker is not None:
                try:
                    await asyncio.wait_for(self._queue.join(), timeout_s)
                except TimeoutError:
                    log.warning("verification unfinished", extra={"kv": {"waiting": self._queue.qsize()}})
            for ident, entry in list(self._inits.items()):
                if not entry.checked:
                    await self._check_init(entry, _init_label(ident))
        finally:
            self.close()

    def close(self) -> None:
        """Stop checking; what still waits is dropped (counted as ``unfinished``)."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            self._skip("unfinished")
        self._inits.clear()

    def result(self, max_errors: int = 5) -> dict[str, Any]:
        """The summary and the first ``max_errors`` errors, JSON-ready, for a load worker to send."""
        return {**self.summary.as_dict(), "media_errors": [asdict(e) for e in self.errors[:max_errors]]}

    # --- the worker -------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._check(job)
            except Exception:  # noqa: BLE001 - a bug here must not end the session; it is logged
                log.exception("verification failed", extra={"kv": {"url": job.url}})
            finally:
                self._queue.task_done()

    async def _run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in the executor; returns its result, CPU time added to the summary."""
        def timed() -> Any:
            t = time.thread_time()
            try:
                return fn(*args)
            finally:
                self.summary.cpu_s += time.thread_time() - t  # one job at a time: no race

        return await asyncio.get_running_loop().run_in_executor(self.executor, timed)

    async def _check_init(self, entry: _Init, label: str) -> None:
        entry.checked = True
        error = await self._run(probe_init, entry.body)
        self.summary.inits_checked += 1
        if error is not None:
            entry.broken = True
            kind, _, who = label.partition(" ")
            self._error(entry.url, label, None, f"{kind} init of {who or kind}: {error}")

    async def _check(self, job: _Job) -> None:
        init_body = b""
        if job.init is not None:
            entry = self._inits.get(job.init)
            if entry is None:
                self._skip("no init")
                return
            if not entry.checked:
                await self._check_init(entry, f"{job.source} {job.label}")
            if entry.broken:
                self._skip("init broken")
                return
            init_body = entry.body
        body, job.body = job.body, b""
        probe: SegmentProbe = await self._run(_decrypt_and_probe, init_body, body, job.key, self.video_frames,
                                              self.audio_frames)
        del body
        self.summary.segments_checked += 1
        track = f"{job.source} {job.label}"
        who = f"{job.source} seg {job.index} of {job.label}"
        if probe.error is not None:
            self._error(job.url, track, job.index, f"{who}: {probe.error}")
        for st in probe.streams:
            if st.kind == "video":
                self.summary.video_frames += st.frames
            else:
                self.summary.audio_frames += st.frames
            if st.error is not None:
                muxed = f"{st.kind} in {who}" if st.kind != job.source else who
                self._error(job.url, track, job.index, f"{muxed}: {st.error}")
        if probe.error is None:
            times = SegmentTimes(source=job.source, rendition=job.label, index=job.index, start_s=job.start_s,
                                 duration_s=job.duration_s, streams=tuple(st.times for st in probe.streams))
            for problem in self.timeline.check(times):
                self._error(job.url, track, job.index, problem)

    def _error(self, url: str, track: str, segment: int | None, what: str) -> None:
        self.summary.errors += 1
        log.warning("media error", extra={"kv": {"url": url, "what": what}})
        if len(self.errors) < self.max_errors:
            self.errors.append(MediaError(url=url, track=track, segment=segment, what=what))

    def _skip(self, reason: str) -> None:
        self.summary.skipped[reason] = self.summary.skipped.get(reason, 0) + 1


def _init_label(ident: Hashable) -> str:
    key = ident[0] if isinstance(ident, tuple) and ident else ident
    text = str(key)
    return text.replace(":", " ", 1) if text.startswith(("audio:", "subtitles:")) else f"video {text}"


# --- the CPU part (runs in the executor thread) --------------------------------------------------

def decrypt_aes128(body: bytes, key: bytes, iv: bytes) -> bytes:
    """A whole AES-128 segment (RFC 8216 4.3.2.4: AES-128-CBC, PKCS7 padding) in the clear;
    ValueError when it cannot be (not whole blocks, bad padding: a wrong key or IV)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if len(body) % 16:
        raise ValueError(f"{len(body)} bytes is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    plain = decryptor.update(body) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(plain) + unpadder.finalize()
    except ValueError:
        raise ValueError("bad PKCS7 padding (a wrong key or IV?)") from None


def _decrypt_and_probe(init: bytes, body: bytes, key: tuple[bytes, bytes] | None, video_frames: int,
                       audio_frames: int) -> SegmentProbe:
    if key is not None:
        try:
            body = decrypt_aes128(body, *key)
        except ValueError as e:
            return SegmentProbe(error=f"AES-128 decryption failed: {e}")
    return probe_media(init + body if init else body, video_frames=video_frames, audio_frames=audio_frames)


def _why(e: Exception) -> str:
    """One line of a PyAV error: its strerror, and the decoder's last log line when it kept one."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    last = getattr(e, "log", None)
    if isinstance(last, tuple) and len(last) == 3 and last[2]:
        text += f" ({last[1]}: {str(last[2]).strip()})"
    return text


def _format(data: bytes) -> str | None:
    """``mpegts`` for 188-byte TS packets (probing damaged TS can fail), else None (let FFmpeg probe)."""
    if data[:1] == b"\x47" and (len(data) <= 188 or data[188:189] == b"\x47"):
        return "mpegts"
    return None


def probe_init(data: bytes) -> str | None:
    """Why an init section (alone) cannot be used, or None: it opens, and names an audio or video
    stream whose decoder exists (and a picture size for video)."""
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", format=_format(data))
    except (av.FFmpegError, ValueError, OSError) as e:
        return f"undecodable: {_why(e)}"
    with container:
        streams = [s for s in container.streams if s.type in _KINDS]
        if not streams:
            return "undecodable: no audio or video stream in it"
        for s in streams:
            cc = s.codec_context
            if cc is None:
                return f"undecodable: {s.type} stream {s.index}: no decoder for its codec"
            try:
                cc.open(strict=False)
            except (av.FFmpegError, ValueError, AttributeError) as e:
                return f"undecodable: {s.type} stream {s.index}: {_why(e)}"
            if s.type == "video" and not (getattr(cc, "width", 0) and getattr(cc, "height", 0)):
                return f"undecodable: video stream {s.index} has no picture size"
    return None


@dataclass(slots=True)
class _Acc:
    """What the demux loop gathers of one stream."""

    kind: str
    time_base: float
    frame_s: float
    limit: int
    start_s: float | None = None
    first_s: float | None = None  # the earliest pts, pre-roll included
    end_s: float | None = None
    packets: int = 0
    corrupt: int = 0
    frames: int = 0
    error: str | None = None
    last_error: str | None = None


def probe_media(data: bytes, *, video_frames: int = 3, audio_frames: int = 8) -> SegmentProbe:
    """Read every packet of a segment (init + segment for fMP4), decode the first frames of each
    audio and video stream; see the module docstring for what is an error."""
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", format=_format(data))
    except (av.FFmpegError, ValueError, OSError) as e:
        return SegmentProbe(error=f"unreadable: {_why(e)}")
    with container:
        streams = [s for s in container.streams if s.type in _KINDS]
        if not streams:
            return SegmentProbe(error="no audio or video stream in it")
        acc: dict[int, _Acc] = {}
        for s in streams:
            cc = s.codec_context
            cc.thread_count = 1
            cc.options = {"err_detect": "explode"}
            rate = (s.average_rate or s.guessed_rate) if s.type == "video" else None
            acc[s.index] = _Acc(kind=s.type, time_base=float(s.time_base or 0), limit=video_frames
                                if s.type == "video" else audio_frames,
                                frame_s=1 / float(rate) if rate else 0.0)
        container_error = None
        try:
            for packet in container.demux(streams):
                a = acc.get(packet.stream.index)
                if a is None or packet.size == 0:
                    continue
                _take(a, packet)
        except av.FFmpegError as e:
            container_error = f"demux failed after {sum(a.packets for a in acc.values())} packets: {_why(e)}"
        for s in streams:  # drain the decoders of what they hold back (B-frame delay)
            a = acc[s.index]
            if a.error is None and a.frames < a.limit and a.packets:
                decoder: Any = s.codec_context
                try:
                    a.frames += len(decoder.decode(None))
                except av.FFmpegError as e:
                    a.last_error = _why(e)
    out = []
    for a in acc.values():
        error = a.error
        if error is None and a.corrupt:
            error = f"{a.corrupt} of {a.packets} packets corrupt (the demuxer says so)"
        if error is None and a.packets and not a.frames:
            error = f"no frames decoded from {a.packets} packets" + (f" ({a.last_error})" if a.last_error else "")
        start = a.start_s if a.start_s is not None else a.first_s
        frame_s = a.frame_s or (1 / 25 if a.kind == "video" else 1024 / 48000)
        out.append(StreamProbe(kind=a.kind, packets=a.packets, frames=a.frames, error=error, times=StreamTimes(
            kind=a.kind, start_s=start, end_s=a.end_s, frame_s=frame_s, broken=error is not None)))
    return SegmentProbe(streams=tuple(out), error=container_error)


def _take(a: _Acc, packet: Any) -> None:
    """One packet: its times, its flags, and its frames while the stream wants more."""
    import av

    a.packets += 1
    if packet.is_corrupt:
        a.corrupt += 1
    if packet.pts is not None:
        t = packet.pts * a.time_base
        d = (packet.duration or 0) * a.time_base
        if a.kind == "audio" and d > 0 and not a.frame_s:
            a.frame_s = d
        a.first_s = t if a.first_s is None else min(a.first_s, t)
        if t >= 0:  # negative pts are pre-roll an edit list cuts (AAC priming, B-frame delay)
            a.start_s = t if a.start_s is None else min(a.start_s, t)
        end = t + (d or a.frame_s)
        a.end_s = end if a.end_s is None else max(a.end_s, end)
    if a.error is not None or a.frames >= a.limit:
        return
    try:
        frames = packet.decode()
    except av.FFmpegError as e:
        if a.frames == 0 and not packet.is_keyframe:
            a.last_error = _why(e)  # the decoder starting mid-GOP (open GOP): not the segment's fault
            return
        a.error = f"decode failed: {_why(e)}"
        return
    for frame in frames:
        a.frames += 1
        if isinstance(frame, av.AudioFrame) and frame.sample_rate and frame.samples:
            a.frame_s = frame.samples / frame.sample_rate
