"""The buffer model of a playback session: playhead, buffered end, start-up, stalls, and what
the viewer does: start position, seeks, pauses, quitting (pure).

`PlaybackState` is advanced with explicit media-clock times (no clock of its own, no I/O): the
session calls ``add(until_s, now_s, start_s)`` when media from ``start_s`` up to ``until_s`` is
buffered and reads ``level(now_s)``, ``state``, ``stalls``. What counts as a stall is decided here
(see the class). A `script.ViewerScript` makes the viewer act at points of *watched* time
(media shown since play): the state applies each act at the exact media-clock time the playhead
reaches it, whatever the caller was doing then, so the same script plays the same everywhere.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .script import PLAY_FROM_0, Pause, Seek, ViewerScript

__all__ = ["PlaybackState", "SeekEvent"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class SeekEvent:
    """A seek the viewer made: at media-clock ``at_s``, from the playhead ``from_s`` to ``to_s``;
    ``wait_s`` until playback went on there (0: inside the buffer; None: it never did)."""

    at_s: float
    from_s: float
    to_s: float
    wait_s: float | None
    flushed: bool


class PlaybackState:
    """Playhead, buffered end, start, stalls and the viewer's script, advanced with explicit times.

    Playback starts once ``startup_s`` is buffered and resumes after a stall once ``resume_s`` is,
    never on less than ``min_playable_s`` ahead unless that is the rest of the content: a stall is
    the buffer running dry after the viewer was shown something, so a title of 1 µs segments
    starts when all of it is in (no stalls), instead of "stalling" between its segments.

    With a ``script``: playback starts at its start position (the buffer begins there). A seek
    inside what is buffered ahead moves the playhead there and plays on; any other seek flushes
    the buffer (``epoch`` counts flushes, so that a download begun before one is known as stale):
    the buffer restarts at the target and playback goes on once ``startup_s`` is in again. That
    wait is a *seek wait* (``seeks``), never a stall. A pause stops the playhead for its
    duration; the buffer may go on filling. At ``watch_s`` watched seconds the viewer quits: the
    state is ``ended`` with ``quit`` set."""

    __slots__ = ("content_s", "startup_s", "resume_s", "playhead_s", "buffered_s", "playing", "started_at",
                 "ended_at", "stall_at", "stalls", "_last", "script", "start_s", "watched_s", "epoch", "seeks",
                 "pauses", "paused_until", "seeking_since", "quit", "_seek_queue", "_pause_queue")

    def __init__(self, content_s: float, startup_s: float = 0.0, resume_s: float = 0.0,
                 min_playable_s: float = 0.0, script: ViewerScript = PLAY_FROM_0) -> None:
        self.content_s = content_s
        self.startup_s = max(startup_s, min_playable_s)
        self.resume_s = max(resume_s, min_playable_s)
        self.script = script
        self.start_s = script.start.resolve(content_s)
        self.playhead_s = self.start_s
        self.buffered_s = self.start_s
        self.watched_s = 0.0
        self.playing = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.stall_at: float | None = None
        self.stalls: list[tuple[float, float]] = []
        self.epoch = 0
        self.seeks: list[SeekEvent] = []
        self.pauses: list[tuple[float, float]] = []
        """(media-clock start, duration) of every pause begun."""
        self.paused_until: float | None = None
        self.seeking_since: float | None = None
        self.quit = False
        self._seek_queue: deque[Seek] = deque(script.seeks)
        self._pause_queue: deque[Pause] = deque(script.pauses)
        self._last: float | None = None

    # --- the clock moves ---------------------------------------------------------------------------

    def _next_act_watched(self) -> float:
        nxt = [q[0].at_s for q in (self._seek_queue, self._pause_queue) if q]
        if self.script.watch_s is not None:
            nxt.append(self.script.watch_s)
        return min(nxt, default=math.inf)

    def advance(self, now_s: float) -> None:
        last, self._last = self._last, now_s
        if last is None or now_s <= last:
            return
        t = last
        while t < now_s and self.ended_at is None:
            if self.paused_until is not None:
                if now_s < self.paused_until:
                    return
                t = self.paused_until
                self.paused_until = None
                if self.buffered_s - self.playhead_s > _EPS:
                    self.playing = True
                elif self.buffered_s >= self.content_s - 1e-6:
                    self.ended_at = t
                else:
                    self.stall_at = t
                continue
            if not self.playing:
                return
            dt = now_s - t
            available = self.buffered_s - self.playhead_s
            to_act = max(self._next_act_watched() - self.watched_s, 0.0)
            if to_act <= available and to_act <= dt:  # the script acts first (or at the same moment)
                self._move(to_act)
                t += to_act
                self._act(t)
            elif available <= dt:  # the buffer runs dry first (at now: dry, as before any script)
                self._move(available)
                self._dry(t + available)
                return
            else:
                self._move(dt)
                return

    def _move(self, step_s: float) -> None:
        self.playhead_s += step_s
        self.watched_s += step_s

    def _dry(self, t: float) -> None:
        self.playhead_s = self.buffered_s
        self.playing = False
        if self.buffered_s >= self.content_s - 1e-6:
            self.ended_at = t
        else:
            self.stall_at = t

    def _act(self, t: float) -> None:
        """What the script says to do at this watched time (one act; the loop comes back for the next)."""
        w = self.watched_s + _EPS
        if self.script.watch_s is not None and self.script.watch_s <= w:
            self.quit, self.playing, self.ended_at = True, False, t
        elif self._pause_queue and self._pause_queue[0].at_s <= w:
            p = self._pause_queue.popleft()
            self.pauses.append((t, p.duration_s))
            self.playing, self.paused_until = False, t + p.duration_s
        elif self._seek_queue and self._seek_queue[0].at_s <= w:
            s = self._seek_queue.popleft()
            self._seek(t, s.to.resolve(self.content_s, self.playhead_s))

    def _seek(self, t: float, to_s: float) -> None:
        here = self.playhead_s
        if here - _EPS <= to_s < self.buffered_s - _EPS:  # forward inside the buffer: no wait
            self.playhead_s = to_s
            self.seeks.append(SeekEvent(at_s=t, from_s=here, to_s=to_s, wait_s=0.0, flushed=False))
            return
        self.seeks.append(SeekEvent(at_s=t, from_s=here, to_s=to_s, wait_s=None, flushed=True))
        self.playhead_s = self.buffered_s = to_s
        self.epoch += 1
        self.playing, self.seeking_since = False, t

    # --- what the caller asks and tells ------------------------------------------------------------

    def level(self, now_s: float) -> float:
        self.advance(now_s)
        return self.buffered_s - self.playhead_s

    def add(self, until_s: float, now_s: float, start_s: float | None = None) -> bool:
        """Media from ``start_s`` (None: wherever the buffer ends) up to ``until_s`` is now in. False
        when it does not join the buffer (a seek moved it elsewhere while it downloaded): nothing changes."""
        self.advance(now_s)
        if start_s is not None and not (start_s <= self.buffered_s + 1e-3 and until_s > self.playhead_s - 1e-3):
            return False
        self.buffered_s = max(self.buffered_s, until_s)
        complete = self.buffered_s >= self.content_s - 1e-6
        level = self.buffered_s - self.playhead_s
        if self.ended_at is not None or self.paused_until is not None:
            return True
        if self.started_at is None:
            if level >= self.startup_s or complete:
                self.started_at, self.playing = now_s, True
        elif self.seeking_since is not None:
            if level >= self.startup_s or complete:
                since, self.seeking_since, self.playing = self.seeking_since, None, True
                last = self.seeks[-1]
                self.seeks[-1] = SeekEvent(at_s=last.at_s, from_s=last.from_s, to_s=last.to_s,
                                           wait_s=now_s - since, flushed=True)
        elif not self.playing and (level >= self.resume_s or complete):
            at = self.stall_at if self.stall_at is not None else now_s
            self.stalls.append((at, now_s - at))
            self.stall_at, self.playing = None, True
        return True

    def stalled_s(self, now_s: float) -> float:
        """Total stall time so far, the ongoing stall included."""
        self.advance(now_s)
        ongoing = now_s - self.stall_at if self.stall_at is not None else 0.0
        return sum(d for _, d in self.stalls) + ongoing

    def next_act_in_s(self, now_s: float) -> float:
        """Media-clock seconds from ``now_s`` until the state acts on its own (a pause ends, or the
        playhead reaches the script's next act) if nothing else happens; inf: never."""
        self.advance(now_s)
        if self.paused_until is not None:
            return max(self.paused_until - now_s, 0.0)
        if self.playing:
            return max(self._next_act_watched() - self.watched_s, 0.0)
        return math.inf

    @property
    def paused(self) -> bool:
        return self.paused_until is not None

    @property
    def seeking(self) -> bool:
        return self.seeking_since is not None

    @property
    def state(self) -> str:
        if self.started_at is None:
            return "starting"
        if self.ended_at is not None:
            return "ended"
        if self.paused_until is not None:
            return "paused"
        if self.seeking_since is not None:
            return "seeking"
        return "playing" if self.playing else "stalled"
