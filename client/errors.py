"""The player's errors: one shallow hierarchy, raised by the client and shown as one line by the CLI.

::

    PlaybackError                 anything that stops or disturbs a playback session
    ├── ProfileError              a device or network profile (or the user's TOML override) is bad
    ├── PlaylistError             a playlist is unreadable, too big, absurd, looping or breaks a rule
    ├── NoPlayableTracks          nothing in the title suits the device (codecs, resolution, audio)
    ├── SteeringError             the steering service gave no usable answer when resolving a title
    ├── FetchError                one HTTP request failed; the session may retry it on another pathway
    │   ├── ConnectError          connection refused, reset or dropped mid-body
    │   ├── FetchTimeout          no first byte within the TTFB timeout, or the body stalled
    │   │   └── TransferTooSlow   the body trickles: it cannot end before the buffer runs dry
    │   │                         plus the stall budget (`client.giveup`)
    │   ├── HttpStatusError       the server answered with a 4xx/5xx status
    │   └── BodyTooLarge          the body grew past the limit set for it
    └── AllPathwaysFailed         every pathway failed for the same request: the session ends
        └── AllPathwaysTooSlow    ... and every one of them because it was too slow

`FetchError.failover` says whether moving to another pathway may help (connection errors,
timeouts, 5xx and 403 do; a 404 on every pathway is the title's fault, but is tried elsewhere too
because an edge may be misconfigured). Every error is an ``errorbase.VodstackError``, so the
``vodstack`` CLI prints its message as one line, without a traceback.
"""
from __future__ import annotations

from typing import TypedDict

from errorbase import VodstackError


class PlaybackError(VodstackError):
    """Base class: a playback session cannot go on as asked."""


class ProfileError(PlaybackError, ValueError):
    """A device or network profile is unknown or malformed; the message names the key or file."""


class PlaylistError(PlaybackError):
    """A playlist is unreadable, too large, absurd or loops; the message names its URL."""


class NoPlayableTracks(PlaybackError):
    """Track selection left nothing the device can play; the message says which filter emptied it."""


class SteeringError(PlaybackError):
    """Resolving a title through the steering service failed (unreachable, bad status or JSON)."""


class RequestContext(TypedDict):
    """Which request failed: the keywords the fetcher gives every `FetchError` it raises."""

    url: str
    pathway: str | None


class FetchError(PlaybackError):
    """One request failed. ``url``, ``pathway`` (may be None) and ``status`` (HTTP status or None)."""

    failover = True

    def __init__(self, message: str, *, url: str = "", pathway: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.pathway = pathway
        self.status = status


class ConnectError(FetchError):
    """The connection was refused, reset, or dropped before the body was complete."""


class FetchTimeout(FetchError):
    """No first byte within the TTFB timeout (``kind='ttfb'``) or no byte for the stall timeout
    (``kind='stall'``)."""

    def __init__(self, message: str, *, kind: str, url: str = "", pathway: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, url=url, pathway=pathway, status=status)
        self.kind = kind


class TransferTooSlow(FetchTimeout):
    """The body arrives so slowly that it cannot finish before the buffer runs dry plus the stall
    budget (at start-up: within the start-up budget); ``verdict`` is the `giveup.Verdict`."""

    def __init__(self, message: str, *, verdict: object = None, url: str = "", pathway: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, kind="too_slow", url=url, pathway=pathway, status=status)
        self.verdict = verdict


class HttpStatusError(FetchError):
    """The server answered with an error status (``status``)."""


class BodyTooLarge(FetchError):
    """The body exceeded its size limit (hostile or broken server)."""


class AllPathwaysFailed(PlaybackError):
    """Every pathway failed for the same request; ``errors`` maps pathway -> last error text."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})


class AllPathwaysTooSlow(AllPathwaysFailed):
    """Every pathway failed for the same request, each with `TransferTooSlow`."""
