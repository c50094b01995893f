"""``vodstack up``: run a whole topology on this machine, one supervised process per server.

    vodstack up                                   # the sample: 3 regions x (origin + 2 edges) + steering
    vodstack up my-topology.toml
    vodstack up --kill edge-us-east-1a            # ask the running stack (its control endpoint)
    vodstack up --restart edge-us-east-1a
    vodstack up --reload edge-us-east-1a          # SIGHUP to its master ([stack] workers): new settings,
                                                  # no request dropped
    vodstack up --status
    vodstack up topo.toml --host 10.0.0.5         # across hosts: only the servers the topology puts on
    vodstack up topo.toml --only eu-west-1,steering   #   this host (or these regions), pointed at the others

Prints where everything listens once every server is ready, then every server's log lines
prefixed with its name, until Ctrl-C or SIGTERM stops them all. A server that dies is reported,
not restarted. ``--kill``/``--restart``/``--status`` find the running stack through
``{data_dir}/run/up.json`` (or ``--control URL``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import UsageError
from ..supervisor import Stack
from ..topology import SAMPLE_TOPOLOGY, Topology, load_topology


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "up", help="run a whole topology (origins, steering, edges), each server its own process",
        description="Start every server of a topology as its own process, wait until each is ready, "
                    "print where they listen and their logs; Ctrl-C stops them all.")
    p.add_argument("topology", nargs="?", default=str(SAMPLE_TOPOLOGY),
                   help="topology TOML file (default: the sample shipped with vodstack)")
    p.add_argument("--data-dir", metavar="DIR", help="override [stack] data_dir")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--kill", metavar="NAME", help="kill a server of the running stack (SIGKILL)")
    action.add_argument("--restart", metavar="NAME", help="restart a server of the running stack")
    action.add_argument("--reload", metavar="NAME",
                        help="reload a server of the running stack without dropping a request: its master re-reads "
                             "the config and certificates and replaces its workers (needs [stack] workers != 1)")
    action.add_argument("--status", action="store_true", help="list the running stack's servers")
    p.add_argument("--control", metavar="URL", help="control endpoint of the running stack (default: from up.json)")
    share = p.add_argument_group("a topology across hosts (docs/deploy.md)")
    share.add_argument("--only", metavar="NAMES",
                       help="start only these regions' origin and edges (comma-separated; 'steering' for the "
                            "steering service), pointed at the other servers where the topology puts them")
    share.add_argument("--host", metavar="ADDRESS",
                       help="start only the servers whose host in the topology is ADDRESS")
    p.set_defaults(run=run)


def _topology(args: argparse.Namespace) -> Topology:
    return load_topology(args.topology, data_dir=Path(args.data_dir).absolute() if args.data_dir else None)


def run(args: argparse.Namespace) -> int:
    topo = _topology(args)
    if args.kill or args.restart or args.reload or args.status:
        return control(topo, args)
    only = [n for n in (args.only or "").split(",") if n]
    local = topo.share(only=only, host=args.host)
    return asyncio.run(serve(topo, args.log_level, local))


async def serve(topo: Topology, log_level: str, local: frozenset[str] | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stack = Stack(topo, control=True, log_level=log_level, local=local)
    starting = asyncio.create_task(stack.start())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await stack.stop()
        return 130
    stopped.cancel()
    try:
        starting.result()
    except BaseException:
        await stack.stop()
        raise
    print(_table(stack), flush=True)
    try:
        await stop.wait()
    finally:
        print("stopping...", flush=True)
        await stack.stop()
        print("stopped", flush=True)
    return 0


def _table(stack: Stack) -> str:
    lines = ["", "vodstack up: every server is ready", f"  {'server':<20} {'url'}"]
    for c in stack.status():
        lines.append(f"  {c['name']:<20} {c['url']}   (pid {c['pid']})")
    lines.append(f"  {'control':<20} {stack.control_url}   (vodstack up --kill NAME / --restart NAME)")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines) + "\n"


def control(topo: Topology, args: argparse.Namespace) -> int:
    url = args.control
    if not url:
        state = topo.stack.data_dir / "run" / "up.json"
        try:
            url = json.loads(state.read_text())["control_url"]
        except (OSError, ValueError, KeyError):
            if topo.stack.control_port == 0:
                raise UsageError(f"no running stack found ({state} is missing); give --control URL") from None
            url = f"http://{topo.stack.host}:{topo.stack.control_port}"
    if args.status:
        req = urllib.request.Request(f"{url}/_/control/status")
    else:
        action, name = (("kill", args.kill) if args.kill else ("reload", args.reload) if args.reload
                        else ("restart", args.restart))
        req = urllib.request.Request(f"{url}/_/control/{action}/{name}", method="POST", data=b"")
    if topo.steering.admin_key:
        req.add_header("X-Admin-Key", topo.steering.admin_key)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("error", str(e))
        except ValueError:
            message = str(e)
        raise UsageError(message) from None
    except urllib.error.URLError as e:
        raise UsageError(f"no running stack answers at {url}: {e.reason}") from None
    if args.status:
        for s in doc["servers"]:
            print(f"{s['name']:<20} {s['state']:<9} {s['url']}  pid={s['pid']}")
    else:
        print(f"{doc['name']}: {doc['state']} (pid {doc['pid']})")
    sys.stdout.flush()
    return 0
