"""Ingest errors: one shallow hierarchy; the CLI prints each as one line (``VodstackError``).

    IngestError                 base, an ``errorbase.VodstackError``: ``vodstack`` prints it as one line
     ├── SourceError            the source cannot be ingested: missing, not a media file, zero length,
     │                          truncated, no video stream (probe)
     ├── SubtitleError          a ``--subs`` file is unreadable or not SRT/WebVTT, or its spec is bad
     ├── LadderError            a ladder file or name that cannot be used
     ├── EncodeError            an ffmpeg task failed (which task, the last lines ffmpeg printed)
     ├── ValidationError        a merged rendition failed a check (which rendition, which check)
     └── TaskCancelled          a task stopped (its ffmpeg killed) because its ingest is being cancelled:
                                a signal, another task's failure, or its work folder removed

Storage failures while publishing stay ``origin.storage.StorageError`` (the CLI prints those too).
"""
from __future__ import annotations

from errorbase import VodstackError


class IngestError(VodstackError):
    """Base of every ingest error."""


class SourceError(IngestError):
    """The source file cannot be ingested."""


class SubtitleError(IngestError):
    """A subtitle file or ``--subs`` spec cannot be used."""


class LadderError(IngestError):
    """The ladder (built-in name or TOML file) is unknown or invalid."""


class EncodeError(IngestError):
    """An ffmpeg command failed; the message names the task and ends with ffmpeg's last words."""


class ValidationError(IngestError):
    """A rendition failed validation; the message names the rendition and every failed check."""


class TaskCancelled(IngestError):
    """A task stopped because its ingest is being cancelled; its ffmpeg process group was killed.
    Not an ``EncodeError``: no stage mistakes it for a failed or undecodable rendition."""
