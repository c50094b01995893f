"""The `vodstack` command as a user runs it: help, version, and one-line errors."""
from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vodstack", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_subcommands():
    out = run("--help")
    assert out.returncode == 0
    assert "simulate" in out.stdout or "origin" in out.stdout


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("vodstack ")


def test_unknown_subcommand_is_a_usage_error():
    out = run("no-such-command")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
