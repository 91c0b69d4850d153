"""The ``wool`` command: run workers on this host, list the workers discovery sees.

``wool worker`` (:mod:`wool._cli_worker`), ``wool workers`` (:mod:`wool._cli_workers`)
and ``wool --version``. Installed as a console script by wool-core; ``python -m wool``
does the same.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from importlib.metadata import distributions, entry_points
from typing import Any, NoReturn

from wool import _import_path, _plugins
from wool._cli_common import (
    DEFAULT_DISCOVERY,
    DEFAULT_NAMESPACE,
    EXIT_FAILURE,
    EXIT_USAGE,
    CommandFailed,
    UsageError,
    load_discovery_class,
    say,
)
from wool._hooks import PLUGIN_GROUP

PLUGIN_GROUPS = (_plugins.DISCOVERY_GROUP, _plugins.LOADBALANCER_GROUP, PLUGIN_GROUP)

DESCRIPTION = """\
wool runs Python async functions (routines) on worker processes.

Start workers with `wool worker`; programs then send them routines through a pool that
finds them by discovery:

    async with wool.WorkerPool(discovery=wool.LocalDiscovery("demo")):
        print(await my_routine())

`wool workers` shows which workers a discovery sees."""

EPILOG = """\
examples:
  wool worker --size 4 --namespace demo    4 workers on this host, namespace "demo"
  wool workers --namespace demo            list them
  wool workers --namespace demo --watch    follow them as they come and go
  wool --version                           the installed wool packages and plugins

Run `wool worker --help` or `wool workers --help` for their options."""

WORKER_DESCRIPTION = """\
Run workers on this host in the foreground and publish them through discovery, so that
pools in other processes (or, with LAN discovery, on other hosts) send them routines.

Prints one line per worker, "worker UID at ADDRESS (pid PID)", then a line starting
with "ready:". SIGINT (Ctrl-C) or SIGTERM withdraws the workers from discovery, gives
the tasks they are running --grace seconds to finish, and exits with status 0; a second
signal kills the workers at once. A worker that dies is reported, withdrawn and replaced
by a new one (with a new uid) after a delay that doubles with each failed try; after 5
failed tries in a row it is given up, with its last lines of error output. With
--no-restart dead workers are only withdrawn. When no worker is left the command exits
with status 1. Exit status 2 means the command line needs a change (the message says
which)."""

WORKER_EPILOG = """\
examples:
  # 4 workers (on unix sockets) that your programs on this host find with
  # wool.LocalDiscovery("demo")
  wool worker --size 4 --namespace demo

  # then, in a program of yours on this host:
  async with wool.WorkerPool(discovery=wool.LocalDiscovery("demo")):
      print(await my_routine())

  # workers for the whole LAN, found with wool.LanDiscovery() (pip install 'wool[lan]'),
  # listening on every interface at ports 50051-50054, reached at 192.168.1.20
  wool worker --size 4 --discovery lan --host 0.0.0.0 --advertise 192.168.1.20 --port 50051 \
      --ca ca.pem --cert worker.pem --key worker-key.pem

  # tagged workers serving mutual TLS: callers need WorkerPool("gpu", credentials=...)
  wool worker --tag gpu --ca ca.pem --cert worker.pem --key worker-key.pem

Workers import the modules of your routines by name, so run this command where
`python -c "import yourmodule"` works: PYTHONPATH and (last, after the installed
packages) the current directory are on the import path, and the packages your routines
use must be installed here. Run it from a directory only you can write to."""

WORKERS_DESCRIPTION = """\
List the workers a discovery sees, with their uid, address, tags, process id, version
and whether they serve TLS. Discovery is asynchronous, so the command listens for
--wait seconds and prints what it has seen by then; --watch follows changes instead."""

WORKERS_EPILOG = """\
examples:
  wool workers --namespace demo                   a table of the workers in "demo"
  wool workers --namespace demo --json            the same as a JSON list
  wool workers --discovery lan --wait 3           the workers on the LAN
  wool workers --namespace demo --watch --json    one JSON object per change, until Ctrl-C"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the fix, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        say(version_report())
        parser.exit()


def build_parser(discovery: str | None = None) -> argparse.ArgumentParser:
    """The parser of the ``wool`` command.

    ``discovery`` names the discovery plugin the command line asks for: its class may add
    options of its own (``add_cli_options``), listed in a group of their own.
    """
    plugin = _discovery_plugin(discovery)
    parser = _Parser(prog="wool", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Help)
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="show the installed wool distributions and plugins, and exit",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")

    worker = commands.add_parser(
        "worker",
        help="run workers on this host until Ctrl-C",
        description=WORKER_DESCRIPTION,
        epilog=WORKER_EPILOG,
        formatter_class=_Help,
    )
    worker.set_defaults(run=_run_worker, parser=worker)
    worker.add_argument(
        "--size",
        type=int,
        metavar="N",
        help="how many worker processes to run (default: the number of CPUs)",
    )
    worker.add_argument(
        "--tag",
        action="append",
        metavar="TAG",
        help="give every worker this tag (repeatable); a pool created with tags only uses "
        "workers that carry all of them",
    )
    _add_discovery_options(worker, "publish the workers through", plugin)
    network = worker.add_argument_group("network")
    network.add_argument(
        "--host",
        default=None,
        help="address the workers listen on over TCP (default: none, a unix socket per "
        "worker that only this user can reach; 127.0.0.1 for this host; 0.0.0.0 for every "
        "interface, with --advertise and TLS files or --insecure)",
    )
    network.add_argument(
        "--port",
        type=int,
        default=0,
        help="with --host, port of the first worker; the next ones use PORT+1, PORT+2, ... "
        "(default: 0, ports the system picks)",
    )
    network.add_argument(
        "--insecure",
        action="store_true",
        help="allow a --host off loopback without mutual TLS: anyone who reaches it can run "
        "any code as this user (a warning is still logged)",
    )
    network.add_argument(
        "--advertise",
        metavar="ADDRESS",
        help="host name or address callers connect to, when it differs from --host "
        "(required with --host 0.0.0.0)",
    )
    tls = worker.add_argument_group(
        "TLS", "Give all three files to serve TLS; callers then need wool.WorkerCredentials."
    )
    tls.add_argument("--ca", metavar="FILE", help="PEM certificate of the CA that callers trust")
    tls.add_argument("--cert", metavar="FILE", help="PEM certificate (chain) of the workers")
    tls.add_argument("--key", metavar="FILE", help="PEM private key of --cert")
    tls.add_argument(
        "--mutual",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="require callers to present a certificate signed by --ca "
        "(default: --mutual; --no-mutual for one-way TLS)",
    )
    worker.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="on stop (SIGINT or SIGTERM, to this command or to its whole process group), "
        "how long running tasks get to finish before they are cancelled (default: 10)",
    )
    worker.add_argument(
        "--no-restart",
        dest="restart",
        action="store_false",
        help="do not replace a worker that dies (by default it is restarted, with a "
        "growing delay, until it fails to start 5 times in a row)",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="run at most N calls at once per worker; more are refused, so callers try "
        "another worker or wait (default: unlimited; 1 suits CPU-bound routines)",
    )
    _add_verbosity(worker, "; the workers log at the same level")

    workers = commands.add_parser(
        "workers",
        help="list the workers a discovery sees",
        description=WORKERS_DESCRIPTION,
        epilog=WORKERS_EPILOG,
        formatter_class=_Help,
    )
    workers.set_defaults(run=_run_workers, parser=workers)
    _add_discovery_options(workers, "look for workers through", plugin)
    workers.add_argument(
        "--tag",
        action="append",
        metavar="TAG",
        help="show only workers that carry this tag (repeatable)",
    )
    workers.add_argument(
        "--wait",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long to listen before printing the list (default: 1)",
    )
    workers.add_argument(
        "--json",
        action="store_true",
        help="print JSON: a list of workers, or with --watch one object per event and per "
        "change of a worker's load",
    )
    workers.add_argument(
        "--watch",
        action="store_true",
        help="print every worker-added, worker-updated and worker-dropped event as it "
        "happens (the workers already there first), and each worker's load (calls "
        "running and completed) whenever it changes, until Ctrl-C",
    )
    workers.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --watch: how often to ask each worker for its load (default: 1)",
    )
    _add_verbosity(workers)
    return parser


def _discovery_plugin(name: str | None) -> tuple[str, Any] | None:
    """The named discovery class, if it loads; a failure is reported when it is used."""
    if name is None:
        return None
    try:
        return name, load_discovery_class(name)
    except UsageError:
        return None


def _requested_discovery(argv: Sequence[str]) -> str:
    """The value of ``--discovery`` on a command line, before it is fully parsed."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--discovery", default=DEFAULT_DISCOVERY)
    known, _ = probe.parse_known_args(argv)
    return known.discovery


def _add_discovery_options(
    parser: argparse.ArgumentParser, purpose: str, plugin: tuple[str, Any] | None
) -> None:
    group = parser.add_argument_group("discovery")
    group.add_argument(
        "--discovery",
        default=DEFAULT_DISCOVERY,
        metavar="NAME",
        help=f"{purpose} this discovery: 'local' (this host), 'lan' (pip install "
        f"'wool[lan]'), or the name of another installed wool.discovery plugin "
        f"(default: {DEFAULT_DISCOVERY})",
    )
    group.add_argument(
        "--namespace",
        metavar="NAME",
        help="the namespace of the discovery, as in wool.LocalDiscovery(NAME), for "
        f"discoveries that have namespaces (default: {DEFAULT_NAMESPACE!r})",
    )
    if plugin is not None:
        name, factory = plugin
        add_options = getattr(factory, "add_cli_options", None)
        if add_options is not None:
            add_options(parser.add_argument_group(f"{name} discovery"))


def _add_verbosity(parser: argparse.ArgumentParser, extra: str = "") -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help=f"log more on stderr (-v: info, -vv: debug){extra}",
    )


def _run_worker(args: argparse.Namespace) -> int:
    from wool import _cli_worker

    return _cli_worker.run(args)


def _run_workers(args: argparse.Namespace) -> int:
    from wool import _cli_workers

    return _cli_workers.run(args)


def version_report() -> str:
    """Every installed wool distribution with its version, then every plugin entry point."""
    versions: dict[str, str] = {}
    for dist in distributions():
        name = _normalize(dist.metadata["Name"] or "")
        if name == "wool" or name.startswith("wool-"):
            versions.setdefault(name, dist.version)
    lines = [] if "wool" in versions else ["wool (not installed)"]
    lines += [f"{name} {version}" for name, version in sorted(versions.items())]
    lines.append(f"python {sys.version.split()[0]} ({sys.executable})")
    rows: list[tuple[str, str, str, str]] = []
    for group in PLUGIN_GROUPS:
        found = {(ep.name, ep.value, _provider(ep)) for ep in entry_points(group=group)}
        if not found:
            rows.append((group, "-", "(none installed)", ""))
        rows += [(group, name, value, provider) for name, value, provider in sorted(found)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines += ["", "plugins (entry points):"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        provider = f"  from {row[3]}" if row[3] else ""
        lines.append(("  " + "  ".join(cells) + provider).rstrip())
    return "\n".join(lines)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _provider(entry_point: Any) -> str:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "an unknown distribution"
    return f"{_normalize(dist.metadata['Name'] or dist.name)} {dist.version}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wool`` command; returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Before any plugin is loaded (the parser loads the --discovery class): `python -m
    # wool` put the working directory first, where a planted module would shadow it.
    _import_path.append_working_directory()
    parser = build_parser(_requested_discovery(argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Name the subcommand's help, where the options it does take are listed.
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    verbosity: int = args.verbose
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    logging.basicConfig(format="%(asctime)s wool: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("wool").setLevel(level)
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"wool {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except CommandFailed as exc:
        print(f"wool {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
