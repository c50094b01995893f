"""``vodstack gc`` as a command: bad input is one line and a non-zero exit; a title whose title.json
cannot be read is left alone (and said so); the table names what went."""
from __future__ import annotations

import json

import pytest

from conftest import run_vodstack

V_OLD = "0" * 16


@pytest.mark.parametrize("args,message", [
    (["--storage", "ftp://host/x"], "unknown storage scheme"),
    (["--storage", "{tmp}", "--grace", "-5"], "--grace -5.0: must not be negative"),
    (["--storage", "{tmp}", "--title", "../x"], "--title '../x': not a title id"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    proc = run_vodstack("gc", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vodstack: error: ") and message in lines[0], proc.stderr


def test_an_unreadable_title_is_left_alone_and_the_table_says_what_went(tmp_path):
    bad = tmp_path / "bad"
    (bad / "v" / V_OLD).mkdir(parents=True)
    (bad / "v" / V_OLD / "x.m4s").write_bytes(b"x")
    (bad / "title.json").write_text("{not json")
    proc = run_vodstack("gc", "--storage", str(tmp_path), "--grace", "0", "--work-dir", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [s["title"] for s in report["skipped"]] == ["bad"] and report["titles"] == []
    assert (bad / "v" / V_OLD / "x.m4s").exists()

    (bad / "title.json").unlink()  # a readable title.json naming another version: the old folder is unnamed
    (bad / "master.m3u8").write_text("#EXTM3U\n")
    (bad / "title.json").write_text(json.dumps({"format": "vodstack-title/1", "title": "bad", "duration_s": 1,
                                                "segment_duration_s": 1, "version": "c" * 16}))
    dry = run_vodstack("gc", "--storage", str(tmp_path), "--grace", "0", "--work-dir", str(tmp_path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove" in dry.stdout and V_OLD in dry.stdout and "unnamed" in dry.stdout
    assert (bad / "v" / V_OLD / "x.m4s").exists()
    done = run_vodstack("gc", "--storage", str(tmp_path), "--grace", "0", "--work-dir", str(tmp_path))
    assert done.returncode == 0 and "removed" in done.stdout and V_OLD in done.stdout, done.stderr
    assert not (bad / "v" / V_OLD).exists() and (bad / "title.json").exists() and (bad / "master.m3u8").exists()
