"""``vodstack gc --storage URL``: remove title versions no entry point names any more, and leftovers.

    vodstack gc --storage ./vodstack-data                 every title, grace 86400 s
    vodstack gc --storage ./vodstack-data --title t1 --grace 0 --dry-run --json

Removes versions a re-ingest superseded more than ``--grace`` seconds ago, version folders of
interrupted publishes older than the grace, the unversioned objects of a title published before
versioning once superseded past the grace, temporary files of dead writers and abandoned ingest
work folders. Never the current version or an entry point. Rules: ``origin/transcode/gc.py``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

from ..errors import UsageError

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    from origin.transcode.sweep import DEFAULT_GRACE_S

    p = subparsers.add_parser(
        "gc", help="remove superseded title versions and leftovers of interrupted ingests",
        description="Remove what no entry point (master.m3u8, manifest.mpd, title.json) names any more: versions "
                    "a re-ingest superseded more than --grace ago, version folders of interrupted publishes "
                    "older than the grace, unversioned objects of titles published before versioning once "
                    "superseded; and temporary files of dead writers and abandoned ingest work folders. "
                    "The current version and the entry points are never removed.")
    p.add_argument("--storage", required=True, metavar="URL",
                   help="storage: a folder, file:///path, s3://bucket?endpoint=URL")
    p.add_argument("--title", action="append", default=None, metavar="T",
                   help="only this title (repeatable; default: every title in the storage)")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, metavar="S",
                   help=f"seconds a superseded version stays, for viewers still watching it (default {DEFAULT_GRACE_S:.0f})")
    p.add_argument("--work-dir", default=None, metavar="DIR",
                   help="where ingests keep their work folders (default: the system temp folder)")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from origin.transcode.pipeline import TITLE_ID

    if args.grace < 0:
        raise UsageError(f"--grace {args.grace}: must not be negative")
    for t in args.title or ():
        if not TITLE_ID.fullmatch(t):
            raise UsageError(f"--title {t!r}: not a title id")
    report = asyncio.run(_run(args))
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print_report(report)
    return 0


async def _run(args: argparse.Namespace) -> Any:
    from origin.storage import open_storage
    from origin.transcode.gc import collect_garbage

    storage = open_storage(args.storage)
    try:
        return await collect_garbage(storage, titles=args.title, now_s=time.time(), grace_s=args.grace,
                                     dry_run=args.dry_run, work_dir=args.work_dir)
    finally:
        await storage.close()


def report_json(report: Any) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "titles": [{"title": p.title, "removed_versions": list(p.removed_versions), "kept_versions": list(p.kept_versions),
                    "removed": [{"key": r.key, "version": r.version, "reason": r.reason.value, "size_bytes": r.size_bytes}
                                for r in p.removals]} for p in report.plans],
        "skipped": [{"title": t, "why": why} for t, why in report.skipped],
        "temp_files": [{"path": r.path, "reason": r.reason.value} for r in report.temp_files],
        "work_folders": [{"path": r.path, "reason": r.reason.value} for r in report.work_folders],
    }


def print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120)
    verb = "would remove" if report.dry_run else "removed"
    table = Table(title=f"vodstack gc: {verb}")
    for col in ("title", "version", "reason", "objects", "bytes"):
        table.add_column(col, justify="right" if col in ("objects", "bytes") else "left")
    for p in report.plans:
        for version in p.removed_versions:
            rs = [r for r in p.removals if r.version == version]
            table.add_row(p.title, version, rs[0].reason.value, str(len(rs)), str(sum(r.size_bytes for r in rs)))
    for r in report.temp_files:
        table.add_row("-", r.path, r.reason.value, "1", "-")
    for r in report.work_folders:
        table.add_row("-", r.path, r.reason.value, "1 folder", "-")
    console.print(table)
    kept = ", ".join(f"{p.title} ({', '.join(p.kept_versions) or 'nothing'})" for p in report.plans)
    console.print(f"kept: {kept or 'no titles'}")
    for title, why in report.skipped:
        console.print(f"skipped {title}: {why}")
