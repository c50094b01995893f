"""The URL token format: HMAC-SHA256 signed grants of one title until an expiry, with key rotation.

    token = base64url(payload) "." base64url(HMAC-SHA256(keys[kid], payload))
    payload = compact JSON {"e": expires_at_s, "k": kid, "t": title}   (sorted keys, no spaces)

base64url is written without padding and must be canonical on the way in (a string that decodes
to the same bytes but is spelled differently is malformed), so that *every* change to a valid
token is rejected. Keys rotate by key id: an edge holds several ``kid -> secret`` pairs, signs
with one and accepts any. Both functions are pure (the clock is a parameter); the steering
service imports :func:`sign_token`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Mapping

#: Longest token accepted; anything longer is malformed before any decoding work.
MAX_TOKEN_CHARS = 1024

#: Reasons a token is refused, as returned in :attr:`Verdict.reason` (the shell logs them).
OK = "ok"
MISSING = "missing"
MALFORMED = "malformed"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
WRONG_TITLE = "wrong_title"


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The outcome of :func:`verify_token`: ``ok`` and, when refused, why."""

    ok: bool
    reason: str
    kid: str = ""
    title: str = ""
    expires_at_s: int = 0


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes | None:
    """Strict, canonical base64url without padding; None if ``text`` is not exactly that."""
    if not text or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64e(raw) == text else None


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _mac(secret: str | bytes, payload: bytes) -> bytes:
    return hmac.new(_as_bytes(secret), payload, hashlib.sha256).digest()


def sign_token(key_id: str, secret: str | bytes, title: str, expires_at_s: int | float) -> str:
    """A token granting ``title`` until ``expires_at_s`` (POSIX seconds), signed with key ``key_id``."""
    if not key_id or not title:
        raise ValueError("sign_token needs a key id and a title")
    payload = json.dumps({"e": int(expires_at_s), "k": key_id, "t": title},
                         separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode("ascii")
    return f"{_b64e(payload)}.{_b64e(_mac(secret, payload))}"


def verify_token(token: str | None, keys: Mapping[str, str | bytes], title: str, now_s: float) -> Verdict:
    """Accept ``token`` for ``title`` at ``now_s`` if it is well formed, signed by a known key, unexpired
    and granting exactly that title; otherwise a refusal with its reason (the edge answers 403)."""
    if not token:
        return Verdict(ok=False, reason=MISSING)
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        return Verdict(ok=False, reason=MALFORMED)
    p64, s64 = token.split(".")
    payload, sig = _b64d(p64), _b64d(s64)
    if payload is None or sig is None or len(sig) != hashlib.sha256().digest_size:
        return Verdict(ok=False, reason=MALFORMED)
    try:
        claims = json.loads(payload)
    except ValueError:
        return Verdict(ok=False, reason=MALFORMED)
    if (not isinstance(claims, dict) or set(claims) != {"e", "k", "t"}
            or not isinstance(claims["k"], str) or not isinstance(claims["t"], str)
            or not isinstance(claims["e"], int) or isinstance(claims["e"], bool)):
        return Verdict(ok=False, reason=MALFORMED)
    kid, granted, expires_at_s = claims["k"], claims["t"], claims["e"]
    secret = keys.get(kid)
    if secret is None:
        return Verdict(ok=False, reason=UNKNOWN_KEY, kid=kid)
    if not hmac.compare_digest(_mac(secret, payload), sig):
        return Verdict(ok=False, reason=BAD_SIGNATURE, kid=kid)
    if now_s >= expires_at_s:
        return Verdict(ok=False, reason=EXPIRED, kid=kid, title=granted, expires_at_s=expires_at_s)
    if granted != title:
        return Verdict(ok=False, reason=WRONG_TITLE, kid=kid, title=granted, expires_at_s=expires_at_s)
    return Verdict(ok=True, reason=OK, kid=kid, title=granted, expires_at_s=expires_at_s)


def parse_token_key(text: str) -> tuple[str, str]:
    """``KID=SECRET`` (as given to ``--token-key``) -> (kid, secret); ValueError naming the problem."""
    kid, sep, secret = text.partition("=")
    if not sep or not kid.strip() or not secret:
        raise ValueError(f"expected KID=SECRET, got {text!r}")
    if any(c in kid for c in ' ."\\'):
        raise ValueError(f"key id {kid!r} has a space, dot, quote or backslash")
    return kid.strip(), secret
