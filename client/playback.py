"""The buffer model of a playback session: playhead, buffered end, start-up, stalls (pure).

`PlaybackState` is advanced with explicit media-clock times (no clock of its own, no I/O): the
session calls ``add(until_s, now_s)`` when media up to ``until_s`` is buffered and reads
``level(now_s)``, ``state``, ``stalls``. What counts as a stall is decided here (see the class).
"""
from __future__ import annotations

__all__ = ["PlaybackState"]


class PlaybackState:
    """Playhead, buffered end, start and stalls, advanced with explicit times (pure).

    Playback starts once ``startup_s`` is buffered and resumes after a stall once ``resume_s`` is,
    never on less than ``min_playable_s`` ahead unless that is the rest of the content: a stall is
    the buffer running dry after the viewer was shown something, so a title of 1 µs segments
    starts when all of it is in (no stalls), instead of "stalling" between its segments."""

    __slots__ = ("content_s", "startup_s", "resume_s", "playhead_s", "buffered_s", "playing", "started_at",
                 "ended_at", "stall_at", "stalls", "_last")

    def __init__(self, content_s: float, startup_s: float = 0.0, resume_s: float = 0.0,
                 min_playable_s: float = 0.0) -> None:
        self.content_s = content_s
        self.startup_s = max(startup_s, min_playable_s)
        self.resume_s = max(resume_s, min_playable_s)
        self.playhead_s = 0.0
        self.buffered_s = 0.0
        self.playing = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.stall_at: float | None = None
        self.stalls: list[tuple[float, float]] = []
        self._last: float | None = None

    def advance(self, now_s: float) -> None:
        last, self._last = self._last, now_s
        if last is None or not self.playing or now_s <= last:
            return
        dt = now_s - last
        available = self.buffered_s - self.playhead_s
        if dt < available:
            self.playhead_s += dt
            return
        self.playhead_s = self.buffered_s
        self.playing = False
        if self.buffered_s >= self.content_s - 1e-6:
            self.ended_at = last + available
        else:
            self.stall_at = last + available

    def level(self, now_s: float) -> float:
        self.advance(now_s)
        return self.buffered_s - self.playhead_s

    def add(self, until_s: float, now_s: float) -> None:
        """Media up to ``until_s`` is now buffered."""
        self.advance(now_s)
        self.buffered_s = max(self.buffered_s, until_s)
        complete = self.buffered_s >= self.content_s - 1e-6
        level = self.buffered_s - self.playhead_s
        if self.started_at is None:
            if level >= self.startup_s or complete:
                self.started_at, self.playing = now_s, True
        elif not self.playing and self.ended_at is None and (level >= self.resume_s or complete):
            at = self.stall_at if self.stall_at is not None else now_s
            self.stalls.append((at, now_s - at))
            self.stall_at, self.playing = None, True

    def stalled_s(self, now_s: float) -> float:
        """Total stall time so far, the ongoing stall included."""
        self.advance(now_s)
        ongoing = now_s - self.stall_at if self.stall_at is not None else 0.0
        return sum(d for _, d in self.stalls) + ongoing

    @property
    def state(self) -> str:
        if self.started_at is None:
            return "starting"
        if self.ended_at is not None:
            return "ended"
        return "playing" if self.playing else "stalled"
