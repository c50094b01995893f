"""Manifests: the title model (``title.json``), HLS playlists through ``m3u8`` and their steered
copies (``steered.py``), DASH MPDs through ``mpegdash`` (``dash.py``), WebVTT text.

Pure text in, text out: nothing here opens a file or a socket.
"""
from .dash import MPD_CONTENT_TYPE, DashSteering, MpdError, ServiceLocation, dumps_mpd, mpd_from_title
from .dash_read import SteeredMpd, loads_mpd, loads_steered_mpd
from .hls import (ByteRange, ContentSteering, IFrameVariant, MediaPlaylist, MediaRendition, MediaSegment,
                  Multivariant, Pathway, PlaylistError, Variant, dumps_media_playlist, dumps_multivariant,
                  iframe_playlist_for, loads_media_playlist, loads_multivariant, media_playlist_for,
                  multivariant_from_title, render_title_playlists, steer_multivariant, subtitle_playlist_for,
                  target_duration)
from .steered import EdgePathway, loads_steerable, steer_mpd_text, steer_multivariant_text
from .title import (ENTRY_POINTS, FORMAT, UNVERSIONED, VERSIONS_FOLDER, AudioTrack, IFrameTrack, InitSegment,
                    PreviousVersion, Segment, SubtitleTrack, Title, TitleFormatError, VideoRendition,
                    content_version, dumps_title, loads_title, measured_bandwidth, version_in_path,
                    version_prefix, versions_named_in, with_path_prefix)
from .webvtt import Cue, SubtitleFormatError, parse_subtitles, segment_webvtt

__all__ = [
    "MPD_CONTENT_TYPE", "DashSteering", "MpdError", "ServiceLocation", "SteeredMpd", "dumps_mpd", "loads_mpd",
    "loads_steered_mpd", "mpd_from_title", "steer_mpd_text",
    "EdgePathway", "PlaylistError", "loads_steerable", "steer_multivariant", "steer_multivariant_text",
    "ENTRY_POINTS", "FORMAT", "UNVERSIONED", "VERSIONS_FOLDER", "PreviousVersion", "content_version",
    "version_in_path", "version_prefix", "versions_named_in", "with_path_prefix", "AudioTrack", "ByteRange", "ContentSteering", "Cue", "IFrameTrack", "IFrameVariant",
    "InitSegment", "MediaPlaylist", "MediaRendition", "MediaSegment", "Multivariant", "Pathway", "Segment",
    "SubtitleFormatError", "SubtitleTrack", "Title", "TitleFormatError", "Variant", "VideoRendition",
    "dumps_media_playlist", "dumps_multivariant", "dumps_title", "iframe_playlist_for",
    "loads_media_playlist", "loads_multivariant", "loads_title", "measured_bandwidth",
    "media_playlist_for", "multivariant_from_title", "parse_subtitles", "render_title_playlists",
    "segment_webvtt", "subtitle_playlist_for", "target_duration",
]
