"""OriginConfig: every setting of one origin server, with defaults and units in the names.

Loaded by ``vodstack.config.load_config(OriginConfig, section="origin", ...)``: defaults < the
``[origin]`` table of a TOML file < ``VODSTACK_ORIGIN_{FIELD}`` environment variables < flags.
"""
from __future__ import annotations

from dataclasses import dataclass

from serverkit.deadlines import RequestDeadlines
from serverkit.run import LOOPS
from serverkit.tls import TlsSettings

#: Event loops the origin can run on. asyncio's own is the default: its ``loop.sendfile`` is
#: zero-copy, uvloop 0.23 has none (see docs/origin.md for the measurements).


@dataclass(frozen=True, kw_only=True)
class OriginConfig(TlsSettings):
    """Settings of one origin server."""

    storage_url: str = ""
    """Where titles are: a folder path, ``file:///...``, ``s3://bucket?endpoint=...``, ``memory://``."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8080
    """TCP port to listen on; 0 picks a free one (the actual port is printed and logged)."""
    region: str = "local"
    """Region name, reported by ``/_/health``."""
    workers: int = 0
    """Worker processes on the port (0, the default: one per core), under a master that restarts a
    dead one and reloads on SIGHUP (``serverkit/workers.py``); 1: this process serves, no master."""
    playlist_max_age_s: int = 2
    """``Cache-Control: max-age`` for playlists and title.json."""
    media_max_age_s: int = 31536000
    """``Cache-Control: max-age`` for media segments (immutable under their key)."""
    storage_timeout_s: float = 5.0
    """Bound on one storage call (stat, one chunk of a read, check); past it the answer is 503."""
    retry_after_s: int = 5
    """``Retry-After`` sent with 503 answers while storage is unavailable."""
    shutdown_timeout_s: float = 30.0
    """On SIGTERM/SIGINT, how long in-flight responses may take to finish before being cut."""
    header_timeout_s: float = 60.0
    """A request head must arrive whole within this of its first byte (or of the end of the answer it
    waited behind), else 408 and the connection is closed (nginx's ``client_header_timeout``)."""
    body_timeout_s: float = 60.0
    """A request body (``POST /_/delay``) must arrive whole within this of the end of its head while no
    answer has started, else 408 and the connection is closed (nginx's ``client_body_timeout``)."""
    keepalive_timeout_s: float = 75.0
    """A connection idle this long (no byte of a next request) is closed (nginx's ``keepalive_timeout``)."""
    chunk_bytes: int = 256 * 1024
    """Size of the chunks streamed from storage (and of the reads when sendfile is unavailable)."""
    sendfile: bool = True
    """Use the kernel's sendfile for storages with local files (``open_fd``)."""
    sendfile_min_bytes: int = 64 * 1024
    """Local objects smaller than this are read whole when opened (and kept as bytes while kept
    open); their bodies leave with the headers in one write. Larger ones go by sendfile."""
    open_file_cache_files: int = 1000
    """Local objects kept open (small ones as bytes) between requests, like nginx's
    ``open_file_cache max=``, at most a quarter of the descriptor limit (``ulimit -n``);
    0 opens every object anew in a worker thread."""
    open_file_cache_valid_s: float = 1.0
    """How long a playlist or title.json kept open is trusted before it is opened again (nginx's
    ``open_file_cache_valid``): a republished one is served at most this late."""
    open_file_cache_media_valid_s: float = 60.0
    """The same for media objects, immutable under their key (sent with ``Cache-Control:
    immutable`` and a year's max-age, so every downstream cache keeps them far longer)."""
    loop: str = "asyncio"
    """Event loop: ``asyncio`` (default, zero-copy sendfile) or ``uvloop``."""
    backlog: int = 1024
    """Listen backlog of the server socket."""
    admin_key: str = ""
    """Secret expected in ``X-Admin-Key`` by admin calls (``POST /_/delay``); empty: refused (403)."""

    def __post_init__(self) -> None:
        if not self.storage_url:
            raise ValueError("storage_url is required (--storage URL)")
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {', '.join(LOOPS)}, got {self.loop!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 (one per core) or more, got {self.workers}")
        if self.storage_timeout_s <= 0:
            raise ValueError(f"storage_timeout_s must be positive, got {self.storage_timeout_s}")
        if min(self.open_file_cache_files, self.open_file_cache_valid_s, self.open_file_cache_media_valid_s) < 0:
            raise ValueError("open_file_cache_files and open_file_cache_*valid_s must not be negative")
        if self.chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {self.chunk_bytes}")
        if self.retry_after_s < 0 or self.shutdown_timeout_s < 0:
            raise ValueError("retry_after_s and shutdown_timeout_s must not be negative")
        if self.playlist_max_age_s < 0 or self.media_max_age_s < 0:
            raise ValueError("playlist_max_age_s and media_max_age_s must not be negative")
        for key in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be a positive number of seconds, got {getattr(self, key)}")

    @property
    def deadlines(self) -> RequestDeadlines:
        """The deadlines on what clients send (``deadlines.py``)."""
        return RequestDeadlines(header_timeout_s=self.header_timeout_s, body_timeout_s=self.body_timeout_s,
                                keepalive_timeout_s=self.keepalive_timeout_s)
