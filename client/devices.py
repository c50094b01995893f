"""Device profiles as data: what a device decodes and shows, loaded from ``devices.toml``.

The shipped table (``client/devices.toml``, next to this module) describes ``iphone``,
``android-phone``, ``tv-4k``, ``laptop-chrome`` and ``low-end``. A user TOML file in the same
shape overrides it key by key (``[iphone] max_audio_channels = 6`` changes just that) or adds new
devices (a new table must give every key). Codec lists hold RFC 6381 prefixes in order of
preference; `codec_matches` says how a prefix matches a codec string from a playlist's CODECS.
Every problem raises `ProfileError` naming the file, device and key.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ProfileError

__all__ = ["DeviceProfile", "FORMATS", "load_devices", "get_device", "codec_matches", "SHIPPED_DEVICES_FILE"]

SHIPPED_DEVICES_FILE = Path(__file__).with_name("devices.toml")
#: Manifest formats a device may declare (``formats``, preferred first).
FORMATS = ("hls", "dash")


def codec_matches(codec: str, prefix: str) -> bool:
    """True if ``codec`` (``avc1.64001f``) is ``prefix`` (``avc1``) or starts with ``prefix + '.'``.

    Case-insensitive. ``mp4a.40.2`` (AAC-LC) does not match ``mp4a.40.29`` (HE-AACv2).
    """
    c = codec.strip().lower()
    p = prefix.strip().lower()
    return c == p or c.startswith(p + ".")


@dataclass(frozen=True)
class DeviceProfile:
    """One device's playback capabilities (see devices.toml for the meaning of each key)."""

    name: str
    description: str
    video_codecs: tuple[str, ...]
    max_width: int
    max_height: int
    max_fps: float
    video_ranges: tuple[str, ...]
    audio_codecs: tuple[str, ...]
    max_audio_channels: int
    screen_width: int
    screen_height: int
    max_bitrate_kbps: int = 0
    default_network: str = "wifi"
    formats: tuple[str, ...] = ("hls",)

    @property
    def preferred_format(self) -> str:
        """The manifest format asked of ``/play`` when none is given: the first the device plays."""
        return self.formats[0]

    def __post_init__(self) -> None:
        for key in ("max_width", "max_height", "screen_width", "screen_height", "max_audio_channels"):
            if getattr(self, key) <= 0:
                raise ProfileError(f"device {self.name}: {key} must be positive")
        if self.max_fps <= 0:
            raise ProfileError(f"device {self.name}: max_fps must be positive")
        if self.max_bitrate_kbps < 0:
            raise ProfileError(f"device {self.name}: max_bitrate_kbps must be >= 0")
        if not self.video_codecs or not self.audio_codecs:
            raise ProfileError(f"device {self.name}: video_codecs and audio_codecs must not be empty")
        bad = [f for f in self.formats if f not in FORMATS]
        if not self.formats or bad or len(set(self.formats)) != len(self.formats):
            raise ProfileError(f"device {self.name}: formats must list some of {', '.join(FORMATS)} once each, "
                               f"got {list(self.formats)}")

    def video_codec_rank(self, codec: str) -> int | None:
        """Preference rank (0 = most preferred) of a video codec string, None if not decodable."""
        return _rank(codec, self.video_codecs)

    def audio_codec_rank(self, codec: str) -> int | None:
        """Preference rank of an audio codec string, None if not decodable."""
        return _rank(codec, self.audio_codecs)

    def fits_resolution(self, width: int, height: int) -> bool:
        """Within the decoder's limits, in either orientation."""
        long_side, short_side = max(width, height), min(width, height)
        return long_side <= max(self.max_width, self.max_height) and short_side <= min(self.max_width, self.max_height)


def _rank(codec: str, prefixes: tuple[str, ...]) -> int | None:
    for i, prefix in enumerate(prefixes):
        if codec_matches(codec, prefix):
            return i
    return None


_FIELDS = {f.name: f for f in dataclasses.fields(DeviceProfile) if f.name != "name"}
_REQUIRED = {name for name, f in _FIELDS.items()
             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ProfileError(f"device file not found: {path}") from None
    except OSError as e:
        raise ProfileError(f"cannot read device file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"device file {path} is not valid TOML: {e}") from None


def _check(value: Any, field: dataclasses.Field[Any], where: str) -> Any:
    kind = field.type
    if kind in ("tuple[str, ...]",):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ProfileError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProfileError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ProfileError(f"{where}: expected a string, got {value!r}")
    return value


def _merge(tables: dict[str, dict[str, Any]], data: dict[str, Any], source: Path) -> None:
    for device, table in data.items():
        if not isinstance(table, dict):
            raise ProfileError(f"{source}: [{device}] must be a table")
        merged = dict(tables.get(device, {}))
        for key, value in table.items():
            field = _FIELDS.get(key.replace("-", "_"))
            if field is None:
                raise ProfileError(f"{source}: {device}.{key}: unknown key (known: {', '.join(sorted(_FIELDS))})")
            merged[field.name] = _check(value, field, f"{source}: {device}.{key}")
        missing = _REQUIRED - merged.keys()
        if missing:
            raise ProfileError(f"{source}: device {device} lacks {', '.join(sorted(missing))}")
        tables[device] = merged


def load_devices(user_file: str | Path | None = None) -> dict[str, DeviceProfile]:
    """The shipped profiles, overridden key by key by ``user_file`` when given."""
    tables: dict[str, dict[str, Any]] = {}
    _merge(tables, _read(SHIPPED_DEVICES_FILE), SHIPPED_DEVICES_FILE)
    if user_file is not None:
        _merge(tables, _read(Path(user_file)), Path(user_file))
    return {name: DeviceProfile(name=name, **values) for name, values in tables.items()}


def get_device(name: str, user_file: str | Path | None = None) -> DeviceProfile:
    """One profile by name; `ProfileError` lists the known names when it is unknown."""
    devices = load_devices(user_file)
    try:
        return devices[name]
    except KeyError:
        raise ProfileError(f"unknown device {name!r} (known: {', '.join(sorted(devices))})") from None
