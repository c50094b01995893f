"""Pure pieces of the origin: request path -> storage key, URL redaction, config checks."""
from __future__ import annotations

import pytest

from origin.server.config import OriginConfig
from origin.server.admin import redact_url
from origin.server.request_paths import key_for_request_path
from origin.storage import InvalidKey, NotFound


@pytest.mark.parametrize("target, key", [
    ("/t1/video/r1/00001.m4s", "t1/video/r1/00001.m4s"),
    ("/t1/master.m3u8?token=abc", "t1/master.m3u8"),
    ("/t1/master.m3u8#frag", "t1/master.m3u8"),
    ("/t1/a%20b.m4s", "t1/a b.m4s"),
    ("/t1/%2541.m4s", "t1/%41.m4s"),                 # decoded once only
    ("/t1/%252e%252e/x", "t1/%2e%2e/x"),             # a literal name, not a parent folder
    ("/t1/caf%C3%A9.vtt", "t1/café.vtt"),
    ("/t1/%E2%82%AC", "t1/€"),
    ("http://h/t1/x", "t1/x"),                       # absolute form (RFC 9112 §3.2.2)
])
def test_paths_that_name_keys(target: str, key: str):
    assert key_for_request_path(target) == key


@pytest.mark.parametrize("target", [
    "/t1/../x", "/../t1/x", "/t1/./x", "/t1//x", "//etc/passwd", "/t1/",
    "/t1/%2e%2e/x", "/%2E%2E/t1/x", "/t1/%2e/x",
    "/t1/..%2fx", "/t1%2fx/y", "/t1/%2F/x", "/%2Fetc/passwd",
    "/t1/%00", "/t1/x%00.m4s", "/t1/x%0a", "/t1/x%7f",
    "/t1\\x/y", "/t1/%5c../x", "/t1/a\\b",
    "/t1/%zz", "/t1/%4", "/t1/%", "/t1/%ff", "/t1/%c0%ae%c0%ae",
    "t1/x", "ftp://h/t1/x", "http://h/../x", "*",
    "/t1/" + "a" * 1100,
])
def test_hostile_paths_are_invalid(target: str):
    with pytest.raises(InvalidKey):
        key_for_request_path(target)


@pytest.mark.parametrize("target", ["/", "/t1", "/master.m3u8", "/?x=1"])
def test_paths_without_title_and_file_are_not_found(target: str):
    with pytest.raises(NotFound):
        key_for_request_path(target)


@pytest.mark.parametrize("url, shown", [
    ("/srv/titles", "/srv/titles"),
    ("file:///srv/titles", "file:///srv/titles"),
    ("s3://bucket/p?endpoint=http://127.0.0.1:9000&region=us-east-1",
     "s3://bucket/p?endpoint=http://127.0.0.1:9000&region=us-east-1"),
    ("s3://AKIA:hunter2@bucket/p?endpoint=http://h:1", "s3://bucket/p?endpoint=http://h:1"),
    ("s3://bucket?secret_key=hunter2&access_key_id=AKIA&session_token=t&region=x", "s3://bucket?region=x"),
    ("s3://bucket?endpoint=http://user:pw@h:1", "s3://bucket?endpoint=http://h:1"),
])
def test_redact_url(url: str, shown: str):
    assert redact_url(url) == shown


def test_endpoint_credentials_are_hidden_too():
    assert "pw" not in redact_url("s3://bucket?endpoint=http://user:pw@h:1")


@pytest.mark.parametrize("overrides, word", [
    ({"storage_url": ""}, "storage_url"),
    ({"loop": "trio"}, "loop"),
    ({"port": 70000}, "port"),
    ({"storage_timeout_s": 0}, "storage_timeout_s"),
    ({"chunk_bytes": 0}, "chunk_bytes"),
])
def test_config_refuses_bad_values(overrides: dict, word: str):
    with pytest.raises(ValueError, match=word):
        OriginConfig(**{"storage_url": "/srv", **overrides})
