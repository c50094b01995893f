"""Fixtures shared by every test folder: a real moto_server (S3 over HTTP) and fresh buckets.

    moto_server     session: a running tests.moto.MotoServer, fake AWS credentials in os.environ
    s3_client       session: a boto3 S3 client on that server, for setup and inspection
    s3_bucket_url   function: a fresh empty bucket as "s3://bucket?endpoint=http://127.0.0.1:PORT"
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:  # `tests.moto` imports under plain `pytest` too
    sys.path.append(_REPO_ROOT)

from tests.moto import MotoServer  # noqa: E402

# Imported before any test starts a thread: pytest's hypothesis plugin otherwise imports it at the
# very end, while threads left by a Dask cluster may be compiling too, and CPython 3.11's compiler
# is not thread-safe there ("SystemError: AST constructor recursion depth mismatch", seen once).
import hypothesis  # noqa: E402,F401

# Origins and edges default to a worker per core under a master; the tests start them as one
# process each (a SIGKILL is a crash, a hit is in the one RAM tier) unless a test asks for workers
# with --workers (a flag beats these) or clears these.
for _section in ("ORIGIN", "EDGE"):
    os.environ.setdefault(f"VODSTACK_{_section}_WORKERS", "1")

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/vodstack-tests/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/vodstack-tests/aws-credentials",
}


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    """Fake AWS credentials for the session, and no profile files or metadata lookups."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def moto_server(aws_env: None) -> Iterator[MotoServer]:
    """One moto_server process for the whole session (restart it with .start() if you stop it)."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def s3_client(moto_server: MotoServer) -> Any:
    """A plain boto3 client on the moto server: test setup and inspection only."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, connect_timeout=2,
                                      read_timeout=10, retries={"max_attempts": 1}))


@pytest.fixture
def s3_bucket_url(moto_server: MotoServer, s3_client: Any) -> Iterator[str]:
    """A fresh, empty bucket; emptied and removed afterwards (best effort)."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    if not moto_server.running:
        moto_server.start()
    s3_client.create_bucket(Bucket=bucket)
    yield f"s3://{bucket}?endpoint={moto_server.endpoint}&region=us-east-1"
    try:
        _remove_bucket(s3_client, bucket)
    except Exception:  # noqa: BLE001 - the server may have been restarted by the test
        pass


def _remove_bucket(client: Any, bucket: str) -> None:
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                      UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)
