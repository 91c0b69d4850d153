"""What the ``wool`` subcommands share: errors, output, signals and discovery lookup."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import signal
import sys
from collections.abc import Callable, Generator
from typing import Any

from wool import _plugins
from wool._protocols import DiscoveryLike

EXIT_USAGE = 2
"""Exit status for a command line that cannot work as given (bad flags, missing plugin)."""

EXIT_FAILURE = 1
"""Exit status for a failure at run time (a worker could not start, all workers died)."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

DEFAULT_DISCOVERY = "local"
DEFAULT_NAMESPACE = "default"


class UsageError(Exception):
    """The command line cannot work as given; the message names the fix. Exit status 2."""


class CommandFailed(Exception):
    """The command could not do its job at run time. Exit status 1."""


def say(line: str) -> None:
    """Print a line on stdout now (scripts read it line by line)."""
    _write(sys.stdout, line)


def warn(line: str) -> None:
    """Print a line on stderr, prefixed with ``wool:``."""
    _write(sys.stderr, f"wool: {line}")


def _write(stream: object, line: str) -> None:
    try:
        print(line, file=stream, flush=True)  # type: ignore[arg-type]
    except (BrokenPipeError, ValueError):
        # Nobody reads this stream any more: keep running quietly instead of crashing,
        # and stop the interpreter from complaining when it flushes at exit.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
            os.close(devnull)


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[signal.Signals], None]) -> Generator[None, None, None]:
    """Call ``handler`` on SIGINT and SIGTERM while the block runs (in the running loop)."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, handler, sig)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def load_discovery_class(name: str) -> Any:
    """The class (or factory) the ``wool.discovery`` entry point ``name`` names.

    Raises :class:`UsageError` with the fix when the plugin is missing or fails to load.
    """
    try:
        return _plugins.load(_plugins.DISCOVERY_GROUP, name)
    except _plugins.PluginNotFound as exc:
        message = str(exc)
        if "install it with" not in message:
            message += (
                "; pass one of the installed names to --discovery, or install the package "
                f"that provides {name!r}"
            )
        raise UsageError(message) from None
    except Exception as exc:
        raise UsageError(
            f"the {name!r} discovery plugin failed to load ({type(exc).__name__}: {exc}); "
            "reinstall the package that provides it"
        ) from None


def takes_namespace(factory: Any) -> bool:
    """Whether a discovery factory accepts a ``namespace`` keyword argument."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "namespace" in parameters


def open_discovery(
    name: str, namespace: str | None, options: argparse.Namespace | None = None
) -> tuple[DiscoveryLike, str]:
    """The discovery ``--discovery NAME``, ``--namespace`` and the plugin's options ask for.

    A plugin class with a ``from_cli(namespace, options)`` classmethod builds itself from
    the namespace (``"default"`` when none was given) and the options it added with
    ``add_cli_options``; otherwise the class is called with ``namespace=`` when it takes
    one, else with no arguments. Returns the discovery and how messages name it.
    Raises :class:`UsageError` with the fix when the plugin is missing or refuses.
    """
    factory = load_discovery_class(name)
    from_cli = getattr(factory, "from_cli", None)
    namespaced = from_cli is not None or takes_namespace(factory)
    if namespace is not None and not namespaced:
        raise UsageError(
            f"the {name!r} discovery has no namespaces; drop --namespace "
            f"(it applies to discoveries such as 'local')"
        )
    namespace = DEFAULT_NAMESPACE if namespace is None else namespace
    try:
        if from_cli is not None:
            discovery = from_cli(namespace, options or argparse.Namespace())
        elif namespaced:
            discovery = factory(namespace=namespace)
        else:
            discovery = factory()
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{exc} (check --namespace and the options of --discovery {name})"
        ) from None
    if not isinstance(discovery, DiscoveryLike):
        raise UsageError(
            f"the {name!r} entry point of group {_plugins.DISCOVERY_GROUP!r} does not make a "
            f"discovery (got {type(discovery).__name__}); fix or uninstall the package that "
            "provides it"
        )
    label = f"{name} discovery (namespace {namespace!r})" if namespaced else f"{name!r} discovery"
    return discovery, label
