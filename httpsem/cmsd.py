"""CMSD, Common Media Server Data (CTA-5006): what a server tells the player with a response.

Pure. The edge encodes, the player parses::

    static_field({"ot": "v", "st": "v", "n": "e1"})                -> 'n="e1",ot=v,st=v'
    dynamic_field("e1", etp_kbps=48000, rtt_ms=12, mb_kbps=3000)    -> '"e1";etp=48000;mb=3000;rtt=12'
    parse_static('n="e1",ot=v')   -> {"n": "e1", "ot": "v"}
    parse_dynamic('"e1";etp=48000;mb=3000;rtt=12, "origin";rd=40')
        -> [("e1", {"etp": 48000, "mb": 3000, "rtt": 12}), ("origin", {"rd": 40})]

``CMSD-Static`` holds what is true of the object wherever it is cached (object type, stream type,
duration, the intermediary's id ``n``); ``CMSD-Dynamic`` is a list, one member per server on the way,
each the server's id with its state of the moment as parameters: ``etp`` its estimate of the
throughput to this client (kbps), ``rtt`` (ms), ``rd`` response delay (ms, request in to first
body byte ready), ``mb`` the maximum bitrate it suggests the player plays (kbps), ``du`` duress.
The player takes the first member (the server nearest to it). Malformed CMSD is `CmsdError`.
"""
from __future__ import annotations

from typing import Mapping

from .cmcd import CmcdError, CmcdValue, _plain_values, encode, parse

__all__ = ["CmsdError", "STATIC", "DYNAMIC", "static_field", "dynamic_field", "parse_static", "parse_dynamic"]

STATIC = "CMSD-Static"
DYNAMIC = "CMSD-Dynamic"


class CmsdError(ValueError):
    """A CMSD header that is not the structured field it should be (the player ignores it)."""


def static_field(keys: Mapping[str, CmcdValue | None]) -> str:
    """``CMSD-Static``: a structured-field dictionary, keys sorted, tokens for ``ot``/``sf``/``st``."""
    return encode({k: v for k, v in keys.items() if v is not None and v is not False})


def dynamic_field(server: str, *, etp_kbps: float | None = None, rtt_ms: float | None = None,
                  rd_ms: float | None = None, mb_kbps: float | None = None, duress: bool = False) -> str:
    """One ``CMSD-Dynamic`` member: ``"server";key=value;...`` (parameters sorted, None left out)."""
    params = {"du": True if duress else None, "etp": _int(etp_kbps), "mb": _int(mb_kbps), "rd": _int(rd_ms),
              "rtt": _int(rtt_ms)}
    text = encode({"x": server})[2:]  # the quoted, escaped string
    for key, value in params.items():
        if value is True:
            text += f";{key}"
        elif value is not None:
            text += f";{key}={value}"
    return text


def _int(value: float | None) -> int | None:
    return None if value is None else max(0, int(round(value)))


def parse_static(text: str) -> dict[str, CmcdValue]:
    """The keys of a ``CMSD-Static`` header (tokens and strings as ``str``)."""
    try:
        return parse(text)
    except CmcdError as e:
        raise CmsdError(str(e)) from None


def parse_dynamic(text: str) -> list[tuple[str, dict[str, CmcdValue]]]:
    """The members of a ``CMSD-Dynamic`` header, nearest server first: (server id, parameters)."""
    from http_sfv.list import List

    lst = List()
    try:
        lst.parse(text.encode("latin-1"))
    except Exception as e:  # noqa: BLE001 - whatever http_sfv raises on bad input is "not CMSD"
        raise CmsdError(f"not a structured-field list: {e}") from None
    out: list[tuple[str, dict[str, CmcdValue]]] = []
    for member in lst:
        value = getattr(member, "value", None)
        if not isinstance(value, str):
            raise CmsdError("a CMSD-Dynamic member is not a server id")
        out.append((str(value), _plain_values(member.params.items())))
    return out
