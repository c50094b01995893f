"""Shared by the edge tests and conftest: the token keys and a token maker."""
from __future__ import annotations

import time

from edge.tokens import sign_token

KEYS = {"k1": "test-secret-1", "k2": "test-secret-2"}


def tok(title: str, ttl_s: int = 3600, kid: str = "k1") -> str:
    return sign_token(kid, KEYS[kid], title, int(time.time()) + ttl_s)
