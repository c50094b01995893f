"""Subtitle inputs: ``--subs`` specs, reading the files, and cutting them into WebVTT segments.

A spec is ``LANG=FILE`` with optional flags after a colon: ``fr=subs.srt``,
``fr:forced=forced.vtt``, ``en:sdh=cc.srt``, ``de:default=de.vtt`` (flags may combine:
``en:sdh,default=cc.srt``). ``forced`` marks a forced-narrative track (FORCED=YES, shown when
the audio is in another language), ``sdh`` one for the deaf and hard of hearing
(CHARACTERISTICS ``public.accessibility.transcribes-spoken-dialog,...``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from manifests import Cue, SubtitleFormatError, parse_subtitles

from .errors import SubtitleError

FLAGS = ("forced", "sdh", "default")
LANGUAGE_NAMES = {
    "en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "it": "Italiano", "pt": "Português",
    "nl": "Nederlands", "ja": "日本語", "ko": "한국어", "zh": "中文", "ru": "Русский", "ar": "العربية",
    "hi": "हिन्दी", "sv": "Svenska", "pl": "Polski", "tr": "Türkçe", "und": "Unknown",
    "eng": "English", "fra": "Français", "fre": "Français", "deu": "Deutsch", "ger": "Deutsch",
    "spa": "Español", "ita": "Italiano", "jpn": "日本語", "por": "Português",
}
ISO639_2_TO_1 = {"eng": "en", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "spa": "es", "ita": "it",
                 "jpn": "ja", "por": "pt", "nld": "nl", "dut": "nl", "kor": "ko", "zho": "zh", "chi": "zh",
                 "rus": "ru", "ara": "ar", "hin": "hi", "swe": "sv", "pol": "pl", "tur": "tr"}


def language_tag(code: str) -> str:
    """BCP 47 primary tag for HLS LANGUAGE (``eng`` -> ``en``)."""
    code = code.strip().lower() or "und"
    return ISO639_2_TO_1.get(code, code)


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, LANGUAGE_NAMES.get(language_tag(code), code))


@dataclass(frozen=True, kw_only=True)
class SubtitleSpec:
    language: str
    path: str
    forced: bool = False
    sdh: bool = False
    default: bool = False

    @property
    def track_id(self) -> str:
        return self.language + ("-forced" if self.forced else "") + ("-sdh" if self.sdh else "")

    @property
    def display_name(self) -> str:
        name = language_name(self.language)
        return name + (" (forced)" if self.forced else "") + (" (SDH)" if self.sdh else "")


def parse_spec(text: str) -> SubtitleSpec:
    left, sep, path = text.partition("=")
    if not sep or not path:
        raise SubtitleError(f"--subs {text!r}: expected LANG=FILE (or LANG:forced=FILE, LANG:sdh=FILE)")
    lang, _, flag_text = left.partition(":")
    lang = lang.strip()
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", lang):
        raise SubtitleError(f"--subs {text!r}: {lang!r} is not a language code (en, fr, pt-BR...)")
    flags = {f.strip().lower() for f in flag_text.split(",") if f.strip()}
    unknown = flags - set(FLAGS)
    if unknown:
        raise SubtitleError(f"--subs {text!r}: unknown flag(s) {', '.join(sorted(unknown))} (known: {', '.join(FLAGS)})")
    return SubtitleSpec(language=lang, path=path, forced="forced" in flags, sdh="sdh" in flags,
                        default="default" in flags)


def read_cues(spec: SubtitleSpec) -> list[Cue]:
    """The cues of a subtitle file, or SubtitleError (unreadable, not UTF-8 text, not SRT/WebVTT)."""
    if os.path.isdir(spec.path):
        raise SubtitleError(f"subtitle file {spec.path} is a directory")
    try:
        with open(spec.path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SubtitleError(f"cannot read subtitle file {spec.path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise SubtitleError(f"subtitle file {spec.path} is not SRT or WebVTT (not text)") from None
    if "\x00" in text:
        raise SubtitleError(f"subtitle file {spec.path} is not SRT or WebVTT (binary data)")
    try:
        return parse_subtitles(text)
    except SubtitleFormatError as e:
        raise SubtitleError(f"subtitle file {spec.path}: {e}") from None
