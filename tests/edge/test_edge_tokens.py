"""Token format: table tests of each refusal reason and hypothesis properties (every mutation,
every expired token, every other title -> refused)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from edge.tokens import (BAD_SIGNATURE, EXPIRED, MALFORMED, MISSING, OK, UNKNOWN_KEY, WRONG_TITLE,
                         parse_token_key, sign_token, verify_token)

KEYS = {"k1": "secret-one", "k2": b"secret-two"}
NOW = 1_800_000_000

titles = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="/"),
                 min_size=1, max_size=40)


@pytest.mark.parametrize("token, title, now, reason", [
    (None, "t", NOW, MISSING),
    ("", "t", NOW, MISSING),
    ("abc", "t", NOW, MALFORMED),
    ("a.b.c", "t", NOW, MALFORMED),
    ("!!!.???", "t", NOW, MALFORMED),
    (sign_token("k9", "x", "t", NOW + 60), "t", NOW, UNKNOWN_KEY),
    (sign_token("k1", "wrong", "t", NOW + 60), "t", NOW, BAD_SIGNATURE),
    (sign_token("k1", "secret-one", "t", NOW), "t", NOW, EXPIRED),
    (sign_token("k1", "secret-one", "t", NOW + 60), "u", NOW, WRONG_TITLE),
    (sign_token("k1", "secret-one", "t", NOW + 60), "t", NOW, OK),
    (sign_token("k2", "secret-two", "t", NOW + 60), "t", NOW, OK),
    ("x" * 2000, "t", NOW, MALFORMED),
])
def test_verdicts(token, title, now, reason):
    verdict = verify_token(token, KEYS, title, now)
    assert verdict.reason == reason
    assert verdict.ok is (reason == OK)


def test_rotation_accepts_any_known_key():
    for kid in KEYS:
        tok = sign_token(kid, KEYS[kid], "movie", NOW + 10)
        assert verify_token(tok, KEYS, "movie", NOW).ok


def test_parse_token_key():
    assert parse_token_key("k1=abc=def") == ("k1", "abc=def")
    for bad in ("k1", "=abc", "k1=", "k 1=x", "k.1=x"):
        with pytest.raises(ValueError):
            parse_token_key(bad)


@settings(max_examples=300, deadline=None)
@given(title=titles, kid=st.sampled_from(sorted(KEYS)), ttl=st.integers(1, 10**6), data=st.data())
def test_every_mutation_is_rejected(title, kid, ttl, data):
    token = sign_token(kid, KEYS[kid], title, NOW + ttl)
    assert verify_token(token, KEYS, title, NOW).ok
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
    kind = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate", "swap"]))
    i = data.draw(st.integers(0, len(token) - 1))
    if kind == "replace":
        c = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[i]))
        mutated = token[:i] + c + token[i + 1:]
    elif kind == "insert":
        mutated = token[:i] + data.draw(st.sampled_from(alphabet)) + token[i:]
    elif kind == "delete":
        mutated = token[:i] + token[i + 1:]
    elif kind == "truncate":
        mutated = token[:i]
    else:
        j = data.draw(st.integers(0, len(token) - 1).filter(lambda j: token[j] != token[i]))
        chars = list(token)
        chars[i], chars[j] = chars[j], chars[i]
        mutated = "".join(chars)
    assert mutated != token
    verdict = verify_token(mutated, KEYS, title, NOW)
    assert not verdict.ok, (kind, i, mutated)


@settings(max_examples=200, deadline=None)
@given(title=titles, kid=st.sampled_from(sorted(KEYS)), expires=st.integers(0, NOW), late=st.integers(0, 10**6))
def test_every_expired_token_is_rejected(title, kid, expires, late):
    token = sign_token(kid, KEYS[kid], title, expires)
    verdict = verify_token(token, KEYS, title, expires + late)
    assert not verdict.ok and verdict.reason == EXPIRED


@settings(max_examples=200, deadline=None)
@given(title=titles, other=titles, kid=st.sampled_from(sorted(KEYS)))
def test_every_other_title_is_rejected(title, other, kid):
    token = sign_token(kid, KEYS[kid], title, NOW + 60)
    verdict = verify_token(token, KEYS, other, NOW)
    assert verdict.ok is (other == title)
