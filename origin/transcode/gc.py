"""Garbage collection of published titles: old versions no entry point names any more, and leftovers.

``plan_gc`` is pure: from a title's object listing, its current ``title.json`` (parsed), the time
and the grace, it returns a ``GcPlan``: every key to remove with its reason. Rules, per object:

1. an entry point (``master.m3u8``, ``manifest.mpd``, ``title.json``): kept, always;
2. under the current version's ``v/{version}/``, or a version any entry point names (``named``:
   a ``master.m3u8`` left naming the old version by a publish stopped between ``title.json`` and
   ``master.m3u8``, a DASH manifest): kept, always;
3. under a version ``previous_versions`` lists: removed once it was superseded more than the
   grace ago *and* its newest object is older than the grace (``SUPERSEDED``): a viewer who
   loaded the old ``master.m3u8`` may still be watching it, and a publish that just made it
   current again rewrote its objects;
4. under a version folder no entry point names (an interrupted publish, or one running now):
   removed once its newest object is older than the grace (``UNNAMED``), so a publish running
   right now is never harmed;
5. outside ``v/`` (a title published before versioning): removed once ``previous_versions`` says
   ``unversioned`` was superseded more than the grace ago (``UNVERSIONED_SUPERSEDED``);
   kept while the title is itself unversioned;
6. anything else (no readable ``title.json``, a ``v/`` folder that is not a version name): kept.

``collect_garbage`` is the thin shell ``vodstack gc`` calls: it lists, plans, re-reads
``title.json`` just before deleting (a publish that changed it meanwhile: planned again), deletes,
and sweeps temporary files and work folders of dead writers (``sweep``).
"""
from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Iterable

from manifests import (ENTRY_POINTS, UNVERSIONED, VERSIONS_FOLDER, Title, TitleFormatError, loads_title, version_in_path,
                       versions_named_in)
from origin.storage import NotFound, ObjectInfo, Storage, read_all

from .sweep import RemovedLeftover, sweep_temp_leftovers, sweep_work_folders

log = logging.getLogger(__name__)


class GcReason(enum.Enum):
    """Why an object is removed (rules 3 to 5 of the module docstring)."""

    SUPERSEDED = "superseded"
    UNNAMED = "unnamed"
    UNVERSIONED_SUPERSEDED = "unversioned_superseded"


@dataclass(frozen=True, kw_only=True)
class Removal:
    key: str
    version: str  #: a content hash, or ``UNVERSIONED``
    reason: GcReason
    size_bytes: int


@dataclass(frozen=True, kw_only=True)
class GcPlan:
    title: str
    removals: tuple[Removal, ...] = ()
    kept_versions: tuple[str, ...] = ()  #: versions with objects left after the plan, current first

    @property
    def removed_versions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.version for r in self.removals))


def plan_gc(title_id: str, listing: Iterable[ObjectInfo], current: Title | None, now_s: float,
            grace_s: float, named: frozenset[str] = frozenset()) -> GcPlan:
    """What to remove of title ``title_id`` (rules in the module docstring). ``listing`` holds the
    objects under ``{title_id}/``; ``current`` is its parsed ``title.json`` (None: none readable);
    ``named``: the versions the other entry points name (``manifests.versions_named_in``)."""
    prefix = f"{title_id}/"
    by_version: dict[str, list[ObjectInfo]] = {}
    for info in listing:
        if not info.key.startswith(prefix):
            continue
        rel = info.key[len(prefix):]
        if rel in ENTRY_POINTS:
            continue
        version = version_in_path(rel)
        if version is None:
            if rel.startswith(VERSIONS_FOLDER + "/"):
                continue  # not a version name: not ours to judge
            version = UNVERSIONED
        by_version.setdefault(version, []).append(info)
    if current is None:
        return GcPlan(title=title_id, kept_versions=tuple(by_version))
    current_version = current.version or UNVERSIONED
    superseded = {p.version: p.superseded_at_s for p in current.previous_versions}
    removals: list[Removal] = []
    kept: list[str] = [current_version] if current_version in by_version else []
    for version, objects in sorted(by_version.items()):
        if version == current_version:
            continue
        if version in named:
            kept.append(version)
            continue
        newest_s = max(o.last_modified_s for o in objects)
        old_enough = now_s - newest_s > grace_s
        reason = None
        if version == UNVERSIONED:
            if version in superseded and now_s - superseded[version] > grace_s:
                reason = GcReason.UNVERSIONED_SUPERSEDED
        elif version in superseded:
            if now_s - superseded[version] > grace_s and old_enough:
                reason = GcReason.SUPERSEDED
        elif old_enough:
            reason = GcReason.UNNAMED
        if reason is None:
            kept.append(version)
            continue
        removals += [Removal(key=o.key, version=version, reason=reason, size_bytes=o.size_bytes) for o in objects]
    return GcPlan(title=title_id, removals=tuple(removals), kept_versions=tuple(kept))


# -- the shell -----------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class GcReport:
    plans: tuple[GcPlan, ...]
    skipped: tuple[tuple[str, str], ...]  #: (title, why) for titles left alone
    temp_files: tuple[RemovedLeftover, ...]
    work_folders: tuple[RemovedLeftover, ...]
    dry_run: bool


async def read_current(storage: Storage, title_id: str) -> Title | None:
    """The parsed ``title.json`` of ``title_id``; None if there is none. TitleFormatError if unreadable."""
    try:
        return loads_title(await read_all(storage, f"{title_id}/title.json"))
    except NotFound:
        return None


async def titles_in(storage: Storage) -> list[str]:
    """Every title (first key part) in the storage, in key order."""
    seen: dict[str, None] = {}
    async for info in storage.list(""):
        seen[info.key.split("/", 1)[0]] = None
    return list(seen)


async def collect_garbage(storage: Storage, *, titles: list[str] | None, now_s: float, grace_s: float,
                          dry_run: bool = False, work_dir: str | None = None,
                          sweep_work: bool = True) -> GcReport:
    """Plan and (unless ``dry_run``) carry out gc for ``titles`` (None: every title in the storage)."""
    plans, skipped = [], []
    for title_id in titles if titles is not None else await titles_in(storage):
        try:
            plan = await _plan_title(storage, title_id, now_s, grace_s)
            if not dry_run and plan.removals:
                again = await _plan_title(storage, title_id, now_s, grace_s)  # a publish meanwhile?
                first = set(plan.removals)
                plan = GcPlan(title=title_id, kept_versions=again.kept_versions,
                              removals=tuple(r for r in again.removals if r in first))
                for r in plan.removals:
                    await storage.delete(r.key)
        except TitleFormatError as e:
            skipped.append((title_id, str(e)))
            log.warning("title.json unreadable: title left alone", extra={"kv": {"title": title_id}})
            continue
        if plan.removals:
            log.info("gc", extra={"kv": {"title": title_id, "removed": len(plan.removals),
                                         "versions": ",".join(plan.removed_versions), "dry_run": dry_run}})
        plans.append(plan)
    temps = await sweep_temp_leftovers(storage, titles=titles, now_s=now_s, grace_s=grace_s, dry_run=dry_run)
    work = (await asyncio.to_thread(sweep_work_folders, work_dir, now_s=now_s, grace_s=grace_s, dry_run=dry_run)
            if sweep_work else [])
    return GcReport(plans=tuple(plans), skipped=tuple(skipped), temp_files=tuple(temps), work_folders=tuple(work),
                    dry_run=dry_run)


async def _plan_title(storage: Storage, title_id: str, now_s: float, grace_s: float) -> GcPlan:
    current = await read_current(storage, title_id)
    listing = [info async for info in storage.list(f"{title_id}/")]
    named: frozenset[str] = frozenset()
    for name in ENTRY_POINTS:
        if name == "title.json":
            continue
        try:
            named |= versions_named_in((await read_all(storage, f"{title_id}/{name}")).decode("utf-8", "replace"))
        except NotFound:
            pass
    return plan_gc(title_id, listing, current, now_s, grace_s, named)
