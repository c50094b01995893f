"""The `vodstack` command: parse the subcommand, set up logging, run it, turn errors into one line.

Each subcommand lives in ``vodstack/commands/NAME.py`` and exposes ``register(subparsers)``, which
adds its parser and sets ``run=function(args) -> int``. Subcommands only parse flags, build
config, call the library and return an exit code.

Errors: ``ConfigError``/``UsageError`` print ``vodstack: error: {e}`` and exit 2; any other
:class:`errorbase.VodstackError` (storage, ingest, edge, playback, load, supervisor, listen errors)
prints the same line and exits 1; any other exception is a bug: "internal error", exit 70, its
traceback at ``--log-level debug``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module

from errorbase import VodstackError
from serverkit.tls import TlsError

from . import __version__
from .errors import ConfigError, UsageError
from .logs import LEVELS, setup_logging

#: Subcommands in the order ``--help`` lists them; a module not written yet is left out.
COMMANDS = ("ingest", "gc", "origin", "edge", "steering", "up", "play", "simulate", "load", "demo", "certs")

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vodstack",
        description="A video-on-demand delivery stack: ingest, origin, edges, steering, player, load.",
    )
    parser.add_argument("--version", action="version", version=f"vodstack {__version__}")
    parser.add_argument("--log-level", choices=LEVELS, default="info", help="logging level (default: info)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = import_module(f"vodstack.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"vodstack.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ConfigError, UsageError, TlsError) as e:
        return fail(str(e), 2)
    except VodstackError as e:  # an expected error (errorbase's contract): its one line
        return fail(str(e), 1)
    except Exception as e:  # noqa: BLE001 - anything else is a bug: say so, keep its traceback
        log.debug("unexpected error", exc_info=True)
        hint = "" if args.log_level == "debug" else " (run with --log-level debug for details)"
        return fail(f"internal error: {type(e).__name__}: {e}{hint}", 70)


def fail(message: str, code: int) -> int:
    print(f"vodstack: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
