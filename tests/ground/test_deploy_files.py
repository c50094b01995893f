"""The files shipped under ``deploy/`` are what they claim: every systemd unit's ExecStart is a command
line ``vodstack`` accepts, naming a config file shipped beside it (or a flag file the docs name), and
every example config loads into its server's settings with no unknown or invalid key."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from edge.config import EdgeConfig
from origin.server.config import OriginConfig
from vodstack.cli import build_parser
from vodstack.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))


def exec_start(unit: Path) -> list[str]:
    text = unit.read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, unit
    return shlex.split(lines[0].removeprefix("ExecStart="))


def test_the_units_are_there():
    assert {u.name for u in UNITS} == {"vodstack-edge@.service", "vodstack-origin.service",
                                       "vodstack-steering.service"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_each_unit_runs_a_vodstack_command_line(unit: Path):
    argv = exec_start(unit)
    assert argv[0] == "/opt/vodstack/.venv/bin/vodstack"
    args = build_parser().parse_args([a.replace("%i", "e1") for a in argv[1:]])
    assert args.command in ("edge", "origin", "steering")
    text = unit.read_text()
    assert "KillMode=mixed" in text  # SIGTERM to the master only; it stops its workers
    if args.command != "steering":
        assert "ExecReload=/bin/kill -HUP $MAINPID" in text
        assert (DEPLOY / Path(args.config).name).exists(), args.config


def test_the_example_configs_load():
    edge = load_config(EdgeConfig, section="edge", file=DEPLOY / "edge-e1.toml", env={})
    assert edge.workers == 0 and edge.tls is not None and edge.http_port == 80 and edge.public_url.startswith("https://")
    origin = load_config(OriginConfig, section="origin", file=DEPLOY / "origin.toml", env={})
    assert origin.workers == 0 and origin.tls is not None
